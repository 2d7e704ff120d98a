"""Before the first optimizer step the policy is its reference: DPO's and KTO's rewards and PPO's KL are 0.

Full fine-tuning loads the reference as a separate copy (`train/runner.py`); it must compute with the policy's
numerics (mixed-precision autocast, weight dtypes) as the adapter-disabled base of a LoRA run does by
construction. Both sides run through `run_training`, as `lmforge train` runs them."""

import json
import math

import pytest
from transformers import TrainerCallback

import lmforge.train.precision as precision
from lmforge.config import build_config
from lmforge.train.runner import run_training
from tests.refdata import refdata


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


class FirstLog(TrainerCallback):
    """The first training log (step 1: its rewards and KL were computed before the optimizer step)."""

    def __init__(self) -> None:
        self.logs: dict | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.logs is None and logs and "loss" in logs:
            self.logs = dict(logs)


def first_log(tmp_path, **keys) -> dict:
    log = FirstLog()
    run_training(build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml",
                               "per_device_train_batch_size": 2, "max_steps": 1, "logging_steps": 1,
                               "save_strategy": "no", "report_to": "none", "learning_rate": 1e-3,
                               "output_dir": str(tmp_path / "out"), **keys}), callbacks=[log])
    assert log.logs is not None
    return log.logs


PREFERENCE = {"dataset_dir": str(refdata("llamafactory_data")), "max_samples": 4, "cutoff_len": 96}


@pytest.mark.parametrize("options", [
    {"pure_bf16": True},  # the policy trains float32 copies of its bf16 weights; a reference left in float32 (or
                          # in bf16) gave rewards of about 2e-3 at step 1
    {"bf16": True},  # autocast: the reference's chunked head replaced the forward accelerate had wrapped in the
                     # trainer's autocast, so it scored in float32: DPO's first loss 0.6940, not ln 2
])
@pytest.mark.parametrize("stage, dataset, rewards", [
    ("dpo", "dpo_en_demo", ("rewards/chosen", "rewards/rejected")),
    ("kto", "kto_en_demo", ("rewards/chosen", "kl")),
])
def test_full_bf16_preference_rewards_start_at_zero(tmp_path, monkeypatch, stage, dataset, rewards, options):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)  # autocast on any CPU (emulated: same numbers)
    logs = first_log(tmp_path, stage=stage, dataset=dataset, finetuning_type="full", **options, **PREFERENCE)
    for key in rewards:
        assert logs[key] == 0.0, (key, logs[key])
    if stage == "dpo":
        assert logs["loss"] == pytest.approx(math.log(2), abs=1e-7)


@pytest.mark.parametrize("finetuning_type, options", [
    ("full", {"bf16": True}),  # the reference outside the Trainer's autocast gave a KL of about -1e-3
    ("full", {"pure_bf16": True}),
    ("lora", {"bf16": True}),  # the adapter-disabled policy: exact by construction
])
def test_ppo_first_kl_is_zero(tmp_path, monkeypatch, finetuning_type, options):
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: True)
    (tmp_path / "prompts.json").write_text(json.dumps([{"instruction": f"Say {n}."} for n in range(4)]))
    logs = first_log(tmp_path, stage="ppo", dataset=str(tmp_path / "prompts.json"), reward_funcs="length",
                     reward_length_target=2, max_new_tokens=4, ppo_epochs=1, finetuning_type=finetuning_type,
                     **options)
    assert logs["kl"] == pytest.approx(0.0, abs=1e-6)
