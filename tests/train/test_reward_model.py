"""A reward model as a reward: the output of `stage: rm` (a LoRA adapter with its head, or a full model) scores
prompt + completion on the ids it was trained on; a folder without a trained head is refused by name."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from lmforge.config import build_config
from lmforge.errors import RewardError
from lmforge.train.rewards.model import reward_model_reward
from lmforge.train.runner import run_training
from tests.conftest import run_cli
from tests.refdata import refdata


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def lora_reward_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("rm")
    run_training(build_config({
        "model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": "rm", "finetuning_type": "lora",
        "dataset": "dpo_en_demo", "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 16,
        "cutoff_len": 128, "per_device_train_batch_size": 4, "max_steps": 2, "save_strategy": "no",
        "report_to": "none", "output_dir": str(out / "rm")}))
    return out / "rm"


def test_an_rm_adapter_scores_the_ids_it_was_trained_on(lora_reward_model, tiny_llama_path, tiny_tokenizer):
    from peft import PeftModel

    reward = reward_model_reward(str(lora_reward_model), tiny_tokenizer, dtype=torch.float32, device="cpu")
    prompts = ["<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"] * 2
    completion_ids = [tiny_tokenizer("Hello there", add_special_tokens=False)["input_ids"] + [2], [5, 6, 7]]
    scores = reward.func(prompts=prompts, completions=["Hello there", "x"], completion_ids=completion_ids)
    # independently: base + adapter (head included), on prompt ids + completion ids as generated
    base = AutoModelForSequenceClassification.from_pretrained(tiny_llama_path, num_labels=1)
    model = PeftModel.from_pretrained(base, lora_reward_model).eval()
    model.config.pad_token_id = tiny_tokenizer.pad_token_id
    prompt_ids = tiny_tokenizer(prompts[0], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        expected = [model(input_ids=torch.tensor([prompt_ids + ids])).logits[0, 0].item() for ids in completion_ids]
    assert scores == pytest.approx(expected, abs=1e-5)
    assert reward.name == "reward_model"


def test_a_folder_without_a_reward_head_is_refused(tmp_path, tiny_llama_path, tiny_tokenizer):
    with pytest.raises(RewardError, match="LlamaForCausalLM without a trained reward head: train one with `stage: rm`"):
        reward_model_reward(str(tiny_llama_path), tiny_tokenizer, dtype=torch.float32, device="cpu")
    (tmp_path / "value_head.safetensors").write_bytes(b"")
    with pytest.raises(RewardError, match="LLaMA-Factory's value-head reward model"):
        reward_model_reward(str(tmp_path), tiny_tokenizer, dtype=torch.float32, device="cpu")


@pytest.mark.slow
def test_llamafactory_ppo_example_trains_ppo_with_a_value_head(lora_reward_model, tmp_path):
    """`lmforge train` on LLaMA-Factory's v0.9.3 PPO example (model, reward model, data and output paths changed,
    plus a two-step smoke-run size): real PPO steps, the adapter saved with the value head beside it as
    LLaMA-Factory saves it."""
    import yaml
    from safetensors.torch import load_file

    raw = yaml.safe_load(refdata("llamafactory_examples_v0.9.3", "train_lora", "llama3_lora_ppo.yaml").read_text())
    raw.update(model_name_or_path="builtin:tiny-llama", reward_model=str(lora_reward_model),
               dataset_dir=str(refdata("llamafactory_data")), output_dir=str(tmp_path / "out"),
               max_steps=2, max_samples=16, cutoff_len=128, max_new_tokens=4, logging_steps=1, save_strategy="no")
    (tmp_path / "ppo.yaml").write_text(yaml.safe_dump(raw))
    done = run_cli("train", str(tmp_path / "ppo.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "out" / "train_summary.json").read_text())["steps"] == 2
    logs = [json.loads(line) for line in (tmp_path / "out" / "trainer_log.jsonl").read_text().splitlines()]
    first, second = logs[0], logs[1]
    assert first["kl"] == pytest.approx(0.0, abs=1e-6)  # a new adapter is the reference until it is trained
    assert first["completions/mean_length"] <= 4 and second["lr"] > 0  # the first step is warm-up (lr 0)
    assert first["kl_coef"] == pytest.approx(0.2 * (1 - 0.2 * 8 / 10000))  # KL 0 under target 6: -20% x 8/10000
    assert {"reward", "policy_loss", "value_loss", "entropy", "clip_ratio"} <= first.keys()
    head = load_file(tmp_path / "out" / "value_head.safetensors")
    assert set(head) == {"v_head.summary.weight", "v_head.summary.bias"} and head["v_head.summary.weight"].shape[0] == 1
    adapter = load_file(tmp_path / "out" / "adapter_model.safetensors")
    assert not any("v_head" in name for name in adapter)  # the policy's adapter alone, as LLaMA-Factory saves it
    assert any(tensor.abs().sum() > 0 for name, tensor in adapter.items() if "lora_B" in name)  # trained
