"""`lmforge eval` and `lmforge check` on LLaMA-Factory v0.9.3's own eval example (examples/train_lora/
llama3_lora_eval.yaml), with only the model, adapter, task_dir and save_dir paths changed."""

import json

import pytest
import torch
import yaml
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from tests.conftest import run_cli
from tests.infer.test_multiple_choice import write_mmlu
from tests.refdata import refdata


@pytest.mark.slow
def test_llamafactorys_eval_example_checks_and_evaluates_a_lora_model(tmp_path, tiny_llama_path):
    example = yaml.safe_load(refdata("llamafactory_examples_v0.9.3", "train_lora", "llama3_lora_eval.yaml")
                             .read_text())
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    adapter = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    adapter.save_pretrained(tmp_path / "adapter")  # init_lora_weights=False: a non-zero adapter, as a trained one
    config = tmp_path / "llama3_lora_eval.yaml"
    config.write_text(yaml.safe_dump({**example, "model_name_or_path": str(tiny_llama_path),
                                      "adapter_name_or_path": str(tmp_path / "adapter"),
                                      "task_dir": str(write_mmlu(tmp_path / "evaluation")),
                                      "save_dir": str(tmp_path / "saves" / "eval")}))
    assert (example["task"], example["template"], example["n_shot"]) == ("mmlu_test", "fewshot", 5)

    checked = run_cli("check", str(config))
    assert checked.returncode == 0, checked.stderr
    assert "valid" in checked.stdout and "task: mmlu_test" in checked.stdout

    evaluated = run_cli("eval", str(config))
    assert evaluated.returncode == 0, evaluated.stderr
    assert "anatomy:" in evaluated.stdout and "Average" in evaluated.stdout
    saved = tmp_path / "saves" / "eval"
    answers = json.loads((saved / "results.json").read_text())
    assert {subject: len(letters) for subject, letters in answers.items()} == {"anatomy": 3, "astronomy": 2}
    assert (saved / "results.log").read_text().splitlines()[0].startswith("        Average: ")

    again = run_cli("eval", str(config))
    assert again.returncode == 1 and "already exists: choose a new folder" in again.stderr
