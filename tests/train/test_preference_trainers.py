"""trl's DPO and KTO trainers as the stages build them: they train and evaluate on lmforge's own token ids
(never re-tokenized by trl), also with evaluation during training, and `evaluate()` with no arguments works
after training, as the runner calls it. What their constructors would reject is reported by preflight
(`lmforge check`) with the fix, and each check is pinned to the trl error it prevents."""

import math
import re

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.errors import ConfigError, DataError
from lmforge.preflight import preflight
from lmforge.train import runner
from lmforge.train.runner import training_kwargs
from lmforge.train.stages import STAGES
from lmforge.train.stages.dpo import PREFERENCE_COLUMNS, TEXT_PAIR
from lmforge.train.stages.pretokenized import on_tokenized_rows
from tests.conftest import run_cli
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def config(tmp_path, stage, dataset, **options):
    return build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": stage,
                         "dataset": dataset, "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 12,
                         "val_size": 4, "cutoff_len": 96, "per_device_train_batch_size": 2,
                         "per_device_eval_batch_size": 2, "max_steps": 1, "eval_strategy": "steps", "eval_steps": 1,
                         "logging_steps": 1, "save_strategy": "no", "finetuning_type": "full",
                         "output_dir": str(tmp_path / "out"), **options})


def stage_trainer(cfg, tiny_llama_path, tiny_tokenizer, lora_targets=None):
    prepared = build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml"))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    if lora_targets:
        model = get_peft_model(model, LoraConfig(target_modules=lora_targets))
    reference = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).eval()
    trainer = STAGES.get(cfg.finetuning.stage).build_trainer(cfg, model, tiny_tokenizer, prepared,
                                                             training_kwargs(cfg), reference)
    return trainer, prepared


def first_rows(batch, count):
    """The unpadded rows of a trl batch (prompt + answer), and where their answers start."""
    rows = []
    for index in range(count):
        length = int(batch["attention_mask"][index].sum())
        rows.append((batch["input_ids"][index, :length].tolist(),
                     int(batch["completion_mask"][index].argmax())))
    return rows


def test_dpo_trains_and_evaluates_on_lmforge_ids(tmp_path, tiny_llama_path, tiny_tokenizer):
    cfg = config(tmp_path, "dpo", "dpo_en_demo")
    trainer, prepared = stage_trainer(cfg, tiny_llama_path, tiny_tokenizer)
    assert trainer.train_dataset is prepared.train and trainer.eval_dataset is prepared.evaluation
    batch = next(iter(trainer.get_eval_dataloader()))  # evaluation is sequential: the first rows in order
    assert batch["input_ids"].shape[0] == 4  # 2 chosen, then 2 rejected
    expected = [(r["prompt_ids"] + r[key], len(r["prompt_ids"]))
                for key in ("chosen_ids", "rejected_ids") for r in prepared.evaluation.select(range(2))]
    assert first_rows(batch, 4) == expected
    trainer.train()  # evaluates at step 1 too
    assert any("eval_loss" in log for log in trainer.state.log_history)
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_loss"]) and "eval_rewards/accuracies" in metrics


def test_kto_trains_and_evaluates_on_lmforge_ids(tmp_path, tiny_llama_path, tiny_tokenizer):
    cfg = config(tmp_path, "kto", "kto_en_demo")
    trainer, prepared = stage_trainer(cfg, tiny_llama_path, tiny_tokenizer)
    assert trainer.train_dataset is prepared.train and trainer.eval_dataset is prepared.evaluation
    batch = next(iter(trainer.get_eval_dataloader()))
    rows = prepared.evaluation.select(range(2))
    assert first_rows(batch, 2) == [(r["prompt_ids"] + r["completion_ids"], len(r["prompt_ids"])) for r in rows]
    kl_lengths = batch["KL_attention_mask"].sum(-1).tolist()
    assert [batch["KL_input_ids"][i, :n].tolist() for i, n in enumerate(kl_lengths)] == [
        r["prompt_ids"] + r["KL_completion_ids"] for r in rows]  # lmforge's KL pairs, not trl's rotation
    assert batch["label"].tolist() == rows["label"]
    trainer.train()
    metrics = trainer.evaluate()
    assert math.isfinite(metrics["eval_loss"])


def test_rows_prepared_for_another_stage_are_refused():
    sft_rows = Dataset.from_dict({"input_ids": [[1, 2]], "labels": [[1, 2]]})
    with pytest.raises(DataError, match="the train data lacks prompt_ids, chosen_ids, rejected_ids"):
        on_tokenized_rows(object, TEXT_PAIR, PREFERENCE_COLUMNS, sft_rows, None)



@pytest.mark.parametrize(("stage", "dataset"), [("dpo", "dpo_en_demo"), ("kto", "kto_en_demo")])
def test_streamed_rows_train_and_evaluate(stage, dataset, tmp_path, tiny_llama_path, tiny_tokenizer):
    """A stream's columns are unknown until it is read; trl sets up streaming (batches not dispatched)."""
    cfg = config(tmp_path, stage, dataset, streaming=True, max_samples=None)
    trainer, prepared = stage_trainer(cfg, tiny_llama_path, tiny_tokenizer)
    assert prepared.train.column_names is None and trainer.train_dataset is prepared.train
    assert trainer.args.accelerator_config.dispatch_batches is False
    trainer.train()
    assert math.isfinite(trainer.evaluate()["eval_loss"])


# (stage, dataset, options, what preflight says, what trl would raise instead, LoRA targets of the model)
TRL_REJECTS = {
    "kto-batch-of-one": ("kto", "kto_en_demo", {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4},
                         "`stage: kto` needs `per_device_train_batch_size` of 2 or more (got 1): trl's KTOTrainer "
                         "estimates the KL term from the other rows of each batch; set "
                         "`per_device_train_batch_size: 2` and `gradient_accumulation_steps: 2` for the same "
                         "effective batch", "Actual (not effective) batch size must be > 1", None),
    "kto-random-order": ("kto", "kto_en_demo", {"train_sampling_strategy": "random"},
                         "trl's KTOTrainer accepts only `train_sampling_strategy: sequential` (got `random`); "
                         "remove the key", "requires `train_sampling_strategy='sequential'`", None),
    "dpo-lora-on-lm_head": ("dpo", "dpo_en_demo", {"finetuning_type": "lora", "lora_target": "q_proj,lm_head"},
                            "`stage: dpo` cannot put LoRA on `lm_head`: trl computes the log-probabilities from "
                            "its weight directly, so the adapter would never train; remove it from `lora_target` "
                            "(`lora_target: q_proj`)", "Applying a PEFT adapter to `lm_head` is not supported",
                            ["q_proj", "lm_head"]),
    "kto-lora-on-lm_head": ("kto", "kto_en_demo", {"finetuning_type": "lora", "lora_target": "lm_head"},
                            "remove it from `lora_target` (`lora_target: all`)",
                            "Applying a PEFT adapter to `lm_head` is not supported", ["lm_head"]),
    "dpo-fused-liger": ("dpo", "dpo_en_demo", {"use_liger_kernel": True,
                                               "liger_kernel_config": {"fused_linear_cross_entropy": True}},
                        "`stage: dpo` cannot use liger's fused linear cross-entropy: trl computes the "
                        "log-probabilities with its own fused LM head; set `fused_linear_cross_entropy: false` in "
                        "`liger_kernel_config`", "fused_linear_cross_entropy", None),
    "kto-fused-liger": ("kto", "kto_en_demo", {"use_liger_kernel": True,
                                               "liger_kernel_config": {"fused_linear_cross_entropy": True}},
                        "`stage: kto` cannot use liger's fused linear cross-entropy", "fused_linear_cross_entropy",
                        None),
}


@pytest.mark.parametrize("case", TRL_REJECTS.values(), ids=TRL_REJECTS.keys())
def test_preflight_reports_what_trl_would_reject(case, tmp_path, tiny_llama_path, tiny_tokenizer, monkeypatch):
    stage, dataset, options, message, trl_error, lora_targets = case
    cfg = config(tmp_path, stage, dataset, **options)
    with pytest.raises(ConfigError) as reported:
        preflight(cfg, "check")
    assert message in " ".join(str(reported.value).split())
    # as on a GPU, where `use_liger_kernel` stays on (a CPU run switches it off)
    monkeypatch.setattr(runner, "without_cuda_only_switches", lambda kwargs: kwargs)
    with pytest.raises(ValueError, match=re.escape(trl_error)):  # the trl error the check prevents
        stage_trainer(cfg, tiny_llama_path, tiny_tokenizer, lora_targets)


def test_what_trl_accepts_passes_preflight(tmp_path):
    preflight(config(tmp_path, "kto", "kto_en_demo", train_sampling_strategy="sequential",
                     per_device_train_batch_size=2, use_liger_kernel=True), "check")
    # orpo and simpo are lmforge's own trainer, which computes the logits through the LoRA head
    preflight(config(tmp_path, "dpo", "dpo_en_demo", pref_loss="orpo", finetuning_type="lora",
                     lora_target="q_proj,lm_head"), "check")
    preflight(config(tmp_path, "dpo", "dpo_en_demo", finetuning_type="freeze", lora_target="lm_head"), "check")


def test_lmforge_check_reports_a_kto_batch_of_one_without_a_traceback(tmp_path):
    run = tmp_path / "run.yaml"
    run.write_text(f"dataset_dir: {refdata('llamafactory_data')}\n")
    result = run_cli("check", str(run), "model_name_or_path=builtin:tiny-llama", "template=chatml", "stage=kto",
                     "dataset=kto_en_demo", "per_device_train_batch_size=1")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "set `per_device_train_batch_size: 2`" in " ".join(result.stderr.split())
