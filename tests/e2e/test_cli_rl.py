"""`stage: grpo` through the CLI as a user runs it: train, resume after the process is gone, chat with the
result; and the examples/rl configs pass every check that runs before a model loads."""

import json

import pytest

from lmforge.config import load_config
from lmforge.preflight import preflight
from tests.conftest import ROOT, run_cli

GRPO = ["model_name_or_path=builtin:tiny-llama", "template=chatml", "stage=grpo", "dataset=identity",
        f"dataset_dir={ROOT / 'examples' / 'data'}", "reward_funcs=length,repetition", "reward_length_target=4",
        "num_generations=4", "per_device_train_batch_size=4", "max_completion_length=8", "logging_steps=1",
        "learning_rate=1e-3", "report_to=none", "rollout_log_steps=1", "beta=0.05"]


@pytest.mark.parametrize("name", ["grpo_math", "rm", "grpo_reward_model"])
def test_rl_examples_pass_the_checks_before_loading(smollm2_path, monkeypatch, name):
    monkeypatch.chdir(ROOT)  # the examples name their data relative to the repository, as `make` runs them
    preflight(load_config(ROOT / "examples" / "rl" / f"{name}.yaml"), "check")


@pytest.mark.slow
def test_grpo_trains_resumes_and_chats(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("finetuning_type: lora\n")
    out = tmp_path / "out"
    first = run_cli("train", str(config), *GRPO, f"output_dir={out}", "max_steps=2", "save_steps=2")
    assert first.returncode == 0, first.stderr
    for name in ("adapter_model.safetensors", "rollout_samples.jsonl", "training_reward.png", "training_kl.png"):
        assert (out / name).is_file(), name
    again = run_cli("train", str(config), *GRPO, f"output_dir={out}", "max_steps=3", "save_steps=2")
    assert again.returncode == 0, again.stderr
    assert "resuming from" in again.stdout and "checkpoint-2" in again.stdout
    logs = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert [log["current_steps"] for log in logs if "reward" in log] == [1, 2, 3]
    assert all("rewards/length/mean" in log and "kl" in log for log in logs if "reward" in log)
    chat = run_cli("chat", str(config), "model_name_or_path=builtin:tiny-llama", "template=chatml",
                   f"adapter_name_or_path={out}", "max_new_tokens=8", "--prompt", "Who are you?")
    assert chat.returncode == 0, chat.stderr
