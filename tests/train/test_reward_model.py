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


def test_ppo_config_runs_as_rloo_with_the_reward_model(lora_reward_model, tmp_path, caplog):
    (tmp_path / "prompts.json").write_text(json.dumps([{"instruction": f"Say {n}."} for n in range(8)]))
    summary = run_training(build_config({
        "model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": "ppo", "finetuning_type": "lora",
        "reward_model": str(lora_reward_model), "dataset": str(tmp_path / "prompts.json"), "num_generations": 4,
        "per_device_train_batch_size": 4, "max_new_tokens": 6, "max_steps": 1, "logging_steps": 1,
        "save_strategy": "no", "report_to": "none", "ppo_epochs": 1, "output_dir": str(tmp_path / "out")}))
    assert summary["steps"] == 1
    assert "`stage: ppo` runs as RLOO" in caplog.text
    log = json.loads((tmp_path / "out" / "trainer_log.jsonl").read_text().splitlines()[0])
    assert "rewards/reward_model/mean" in log and log["completions/max_length"] <= 6
