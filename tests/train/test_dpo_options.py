"""LLaMA-Factory's DPO options on trl's DPO losses: cDPO label smoothing, the BCO mix and LD-DPO. Each logged loss
is checked against the formula, from the rewards trl logs for the same single pair."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.errors import ConfigError
from lmforge.train.runner import training_kwargs
from lmforge.train.stages import STAGES
from lmforge.train.stages.dpo import dpo_losses
from tests.refdata import refdata
from tests.stage_data import build_stage_datasets


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def trained_logs(tmp_path, tiny_llama_path, tiny_tokenizer, **options) -> list[dict]:
    """Three steps of one pair each (full fine-tuning, a frozen reference); the logged entry of each step."""
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "stage": "dpo",
                        "dataset": "dpo_en_demo", "dataset_dir": str(refdata("llamafactory_data")), "max_samples": 3,
                        "cutoff_len": 96, "per_device_train_batch_size": 1, "max_steps": 3, "logging_steps": 1,
                        "save_strategy": "no", "finetuning_type": "full", "learning_rate": 1e-3,
                        "output_dir": str(tmp_path / "out"), "pref_beta": 0.5, **options})
    prepared = build_stage_datasets(cfg, tiny_tokenizer, get_template("chatml"))
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32)
    reference = AutoModelForCausalLM.from_pretrained(tiny_llama_path, dtype=torch.float32).eval()
    trainer = STAGES.get("dpo").build_trainer(cfg, model, tiny_tokenizer, prepared, training_kwargs(cfg), reference)
    trainer.train()
    return [entry for entry in trainer.state.log_history if "loss" in entry]


@pytest.mark.slow
def test_cdpo_label_smoothing_is_the_conservative_sigmoid_loss(tmp_path, tiny_llama_path, tiny_tokenizer):
    smoothing = 0.2
    logs = trained_logs(tmp_path, tiny_llama_path, tiny_tokenizer, dpo_label_smoothing=smoothing)
    for entry in logs[1:]:  # the first step's margin is 0: the model is its reference
        margin = entry["rewards/margins"]
        expected = -(1 - smoothing) * log_sigmoid(margin) - smoothing * log_sigmoid(-margin)
        assert entry["loss"] == pytest.approx(expected, rel=1e-3, abs=1e-5)
        assert abs(margin) > 1e-3


@pytest.mark.slow
def test_bco_weight_mixes_the_bco_pair_loss(tmp_path, tiny_llama_path, tiny_tokenizer):
    weight = 0.5
    logs = trained_logs(tmp_path, tiny_llama_path, tiny_tokenizer, pref_bco_weight=weight)
    for entry in logs[1:]:
        chosen, rejected = entry["rewards/chosen"], entry["rewards/rejected"]
        dpo = -log_sigmoid(chosen - rejected)
        bco = -log_sigmoid(chosen) - log_sigmoid(-rejected)
        assert entry["loss"] == pytest.approx((dpo + weight * bco) / (1 + weight), rel=1e-3, abs=1e-5)


def test_dpo_options_become_trl_losses(tmp_path):
    def losses(**keys):
        return dpo_losses(build_config({"stage": "dpo", **keys}))

    assert losses() == (["sigmoid"], [1.0])
    kinds, weights = losses(dpo_label_smoothing=0.1, pref_bco_weight=1.0, pref_ftx=0.3)
    assert kinds == ["sigmoid", "robust", "bco_pair", "sft"]
    assert weights == pytest.approx([0.9, -0.4, 0.5, 0.3])
    with pytest.raises(ConfigError, match="smooths the sigmoid loss"):
        build_config({"dpo_label_smoothing": 0.1, "pref_loss": "ipo"})
    with pytest.raises(ConfigError, match="not `pref_loss: simpo`"):
        build_config({"ld_alpha": 0.5, "pref_loss": "simpo"})


@pytest.mark.slow
def test_ld_alpha_reaches_trl(tmp_path, tiny_llama_path, tiny_tokenizer):
    """LD-DPO down-weights answer tokens past the shorter answer: with alpha 0 only the shared length counts, so
    the first reward margins differ from plain DPO's (this pair's answers differ in length)."""
    whole = {"cutoff_len": 1024}  # answers cut to one length would share every token
    plain = trained_logs(tmp_path / "plain", tiny_llama_path, tiny_tokenizer, **whole)
    shared = trained_logs(tmp_path / "ld", tiny_llama_path, tiny_tokenizer, ld_alpha=0.0, **whole)
    assert plain[1]["rewards/margins"] != pytest.approx(shared[1]["rewards/margins"], rel=1e-3)
