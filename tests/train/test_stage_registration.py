"""A stage is self-contained: one registered from this module alone (an SFT variant with its own trainer and
loss) passes preflight and trains end to end through the real runner, and leaves no trace once unregistered."""

import json

import pytest
import torch
from rich.console import Console
from transformers import TrainingArguments

from lmforge.config import build_config
from lmforge.data.collator import SftCollator
from lmforge.data.stage_data import SFT
from lmforge.errors import ConfigError
from lmforge.preflight import preflight
from lmforge.train.runner import run_training
from lmforge.train.stages import STAGES, Stage, register_stage
from lmforge.train.trainer import LmforgeTrainer
from tests.conftest import ROOT

BASE = {"model_name_or_path": "builtin:tiny-llama", "template": "chatml", "dataset": "identity",
        "dataset_dir": str(ROOT / "examples" / "data"), "max_samples": 8, "cutoff_len": 64, "max_steps": 2,
        "per_device_train_batch_size": 4, "learning_rate": 1e-2, "logging_steps": 1, "report_to": "none"}


class LabelSmoothedTrainer(LmforgeTrainer):
    """The toy stage's own loss: cross-entropy with label smoothing, its value logged as `smoothed_loss`."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits, targets = outputs.logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten()
        loss = torch.nn.functional.cross_entropy(logits.float(), targets, ignore_index=-100, label_smoothing=0.1)
        if model.training:
            self.log({"smoothed_loss": loss.item()})
        return (loss, outputs) if return_outputs else loss


def build_trainer(cfg, model, tokenizer, prepared, kwargs, ref_model=None):
    return LabelSmoothedTrainer(model=model, args=TrainingArguments(**kwargs), train_dataset=prepared.train,
                                data_collator=SftCollator(pad_token_id=tokenizer.pad_token_id),
                                processing_class=tokenizer)


def no_packing(cfg):
    return "`stage: smoothed_sft` does not pack: remove `packing`" if cfg.data.packing else None


@pytest.fixture
def smoothed_sft():
    stage = register_stage(Stage("smoothed_sft", SFT, build_trainer, checks=(no_packing,),
                                 plots=("loss", "smoothed_loss")))
    yield stage
    STAGES.unregister(stage.name)


@pytest.mark.slow
def test_a_stage_registered_from_a_test_trains_through_the_runner(smoothed_sft, tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    out = tmp_path / "out"
    cfg = build_config({**BASE, "stage": "smoothed_sft", "output_dir": str(out)})
    summary = run_training(cfg, Console(quiet=True))
    assert summary["steps"] == 2 and summary["final_loss"] > 0
    logs = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert [log["current_steps"] for log in logs if "loss" in log] == [1, 2]
    assert (out / "training_smoothed_loss.png").is_file()  # its own trainer and loss ran, and its plot was drawn
    assert (out / "adapter_model.safetensors").is_file()
    assert (out / "generation_config.json").is_file()  # not a reward head: saved as a generating model


def test_a_registered_stage_has_its_own_checks(smoothed_sft):
    cfg = build_config({**BASE, "stage": "smoothed_sft", "output_dir": "out"})
    assert preflight(cfg, "train").auto_class == "AutoModelForCausalLM"
    with pytest.raises(ConfigError, match="`stage: smoothed_sft` does not pack"):
        preflight(build_config({**BASE, "stage": "smoothed_sft", "packing": True}), "check")
    with pytest.raises(ConfigError, match="needs `stage: sft` \\(got `smoothed_sft`\\)"):
        preflight(build_config({**BASE, "stage": "smoothed_sft", "do_predict": True, "do_train": True,
                                "eval_dataset": "identity"}), "check")


def test_an_unregistered_stage_is_unknown_again():
    cfg = build_config({**BASE, "stage": "smoothed_sft", "output_dir": "out"})
    register_stage(Stage("smoothed_sft", SFT, build_trainer))
    preflight(cfg, "check")
    STAGES.unregister("smoothed_sft")
    with pytest.raises(ConfigError, match="unknown stage `smoothed_sft`"):
        preflight(cfg, "check")
    with pytest.raises(ConfigError, match=r"unknown stage `sfft`; did you mean `sft`\?"):
        preflight(build_config({**BASE, "stage": "sfft"}), "check")
