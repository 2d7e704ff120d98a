"""Every stage trains end to end through the CLI on builtin:tiny-llama with LLaMA-Factory's demo data."""

import json

import pytest
import torch

from lmforge.data.processors.sft import IGNORE_INDEX
from lmforge.train.reference_free import PairCollator, answer_logps
from tests.conftest import ROOT, run_cli
from tests.refdata import refdata

COMMON = ["model_name_or_path=builtin:tiny-llama", "template=chatml", "max_samples=16", "cutoff_len=128",
          "max_steps=2", "per_device_train_batch_size=2", "logging_steps=1", "learning_rate=1e-3"]


def train(tmp_path, *args):
    config = tmp_path / "run.yaml"
    config.write_text(f"dataset_dir: {refdata('llamafactory_data')}\n")
    out = tmp_path / "runs[exp1]" / "out"  # brackets, which rich would read as markup, printed as they are
    result = run_cli("train", str(config), *COMMON, f"output_dir={out}", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    logs = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    return out, logs, result


@pytest.mark.slow
@pytest.mark.parametrize("stage_args", [
    ["stage=pt", "dataset=c4_demo"],
    ["stage=dpo", "dataset=dpo_en_demo"],
    ["stage=dpo", "dataset=dpo_en_demo", "pref_loss=orpo"],
    ["stage=dpo", "dataset=dpo_en_demo", "pref_loss=simpo", "pref_ftx=0.1"],
    ["stage=kto", "dataset=kto_en_demo"],
], ids=["pt", "dpo-sigmoid", "orpo", "simpo", "kto"])
def test_stage_trains_and_saves_an_adapter(tmp_path, stage_args):
    out, logs, result = train(tmp_path, *stage_args)
    assert f"saved to {out}" in result.stdout.replace("\n", "")
    assert [log["current_steps"] for log in logs if "loss" in log] == [1, 2]
    assert all(torch.isfinite(torch.tensor(log["loss"])) for log in logs if "loss" in log)
    assert (out / "adapter_model.safetensors").is_file() and (out / "training_loss.png").is_file()
    if "stage=dpo" in stage_args:
        assert (out / "training_rewards_accuracies.png").is_file()


@pytest.mark.slow
def test_full_dpo_uses_a_frozen_reference_and_pref_ftx(tmp_path):
    out, _, _ = train(tmp_path, "stage=dpo", "dataset=dpo_en_demo", "finetuning_type=full", "pref_ftx=0.5")
    assert (out / "model.safetensors").is_file()
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["trainable_params"] == summary["total_params"]  # the reference is a separate frozen copy


@pytest.mark.slow
def test_reward_model_has_a_value_head_that_reloads(tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    from lmforge.hub.builtin import builtin_path

    out, _, _ = train(tmp_path, "stage=rm", "dataset=dpo_en_demo", "eval_dataset=dpo_en_demo",
                      "eval_strategy=steps", "eval_steps=1")
    assert (out / "training_accuracy.png").is_file() or (out / "training_eval_accuracy.png").is_file()
    base = AutoModelForSequenceClassification.from_pretrained(builtin_path("builtin:tiny-llama"), num_labels=1)
    model = PeftModel.from_pretrained(base, out)
    with torch.no_grad():
        assert model(torch.tensor([[5, 6, 7]])).logits.shape == (1, 1)


def test_pair_collator_and_answer_logps_match_a_direct_computation():
    batch = PairCollator(pad_token_id=0)([{"prompt_ids": [3, 4], "chosen_ids": [5, 6], "rejected_ids": [7]}])
    assert batch["input_ids"].tolist() == [[3, 4, 5, 6], [3, 4, 7, 0]]
    ignore = IGNORE_INDEX
    assert batch["labels"].tolist() == [[ignore, ignore, 5, 6], [ignore, ignore, 7, ignore]]
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 10)
    total, length = answer_logps(logits, batch["labels"])
    logp = logits.log_softmax(-1)
    expected_chosen = logp[0, 1, 5] + logp[0, 2, 6]  # position t predicts token t + 1
    assert torch.allclose(total[0], expected_chosen) and length.tolist() == [2, 1]
    assert torch.allclose(total[1], logp[1, 1, 7])


@pytest.mark.slow
def test_evaluation_loss_and_token_accuracy(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(f"dataset: identity\ndataset_dir: {ROOT / 'examples' / 'data'}\nval_size: 0.2\n"
                      "eval_strategy: steps\neval_steps: 2\ncompute_accuracy: true\n")
    out = tmp_path / "out"
    result = run_cli("train", str(config), *COMMON, "max_samples=40", "max_steps=4", f"output_dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert 0 <= summary["eval_accuracy"] <= 1 and summary["eval_loss"] > 0
    logs = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert any("eval_loss" in log for log in logs)
    assert (out / "training_eval_loss.png").is_file()
