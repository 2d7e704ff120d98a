"""Every tiny family through what `lmforge train` and `lmforge export` run, in this process: SFT two steps on
LLaMA-Factory's demo rows with `template: auto` (LoRA, then full fine-tuning), and the export of the LoRA run
(merged, saved, reloaded, logits checked on text and on a prompt with an image).

Which file proves what, per family:
- here: the training pipeline (`run_training`: data, template, trainer, save) with LoRA and full, two finite
  losses each; the export pipeline (`run_export`) merges the adapter and reloads with matching logits;
- `test_families.py`: the example is the processor's own expansion, packed loss == padded loss (or packing
  is refused), ranking rows for DPO;
- `test_families_cli.py`: chat with an image == the model's own `generate` (every family), and the same
  train + export as a user runs them (subprocesses) for one family per medium (full fine-tuning for one).
Running the CLI once per family and mode cost about an hour of CI; what it adds over this file (argument
parsing, process start) is not family-specific.
"""

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.testing.tiny_vlm import TINY_VLM_FAMILIES
from tests.refdata import refdata

DATASETS = {"images": "mllm_demo", "videos": "mllm_video_demo", "audios": "mllm_audio_demo"}
# GLM-4.xV and Molmo2 cannot take images and videos in one forward (transformers); the others mix them in a batch
ONE_MEDIUM = {"glm4v", "glm4v_moe", "glm46v", "molmo2"}
FAMILIES = sorted(TINY_VLM_FAMILIES)
# what the CLI runs were given as overrides, as typed values
TRAIN = {"stage": "sft", "template": "auto", "max_steps": 2, "max_samples": 4, "per_device_train_batch_size": 2,
         "learning_rate": 1e-3, "logging_steps": 1, "report_to": "none", "image_max_pixels": 4096,
         "video_max_pixels": 1024, "video_maxlen": 4, "cutoff_len": 2048}


def family_media(folder: Path) -> list[str]:
    from transformers import AutoProcessor

    from lmforge.data.multimodal.plugin import mm_plugin_for

    return list(mm_plugin_for(AutoProcessor.from_pretrained(folder)).markers)


def train_settings(folder: Path, family: str, finetuning_type: str, out: Path) -> dict[str, Any]:
    """The run of two SFT steps on the demo rows of every medium the family takes."""
    kinds = family_media(folder)
    datasets = ",".join(DATASETS[kind] for kind in (kinds[:1] if family in ONE_MEDIUM else kinds))
    return {**TRAIN, "model_name_or_path": str(folder), "dataset": datasets,
            "dataset_dir": str(refdata("llamafactory_data")), "finetuning_type": finetuning_type,
            "output_dir": str(out)}


def logged_losses(out: Path) -> list[float]:
    return [line["loss"] for line in map(json.loads, (out / "trainer_log.jsonl").read_text().splitlines())
            if "loss" in line]


def assert_two_finite_losses(out: Path) -> None:
    losses = logged_losses(out)
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses), losses


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_sft_then_export_merges_and_reloads_with_the_same_logits(family, tiny_vlm, tmp_path):
    from lmforge.export.pipeline import run_export
    from lmforge.train.runner import run_training

    folder = tiny_vlm(family)
    adapter = tmp_path / "lora"
    run_training(build_config(train_settings(folder, family, "lora", adapter)))
    assert_two_finite_losses(adapter)
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "processor_config.json").is_file()
    printed = io.StringIO()
    run_export(build_config({"model_name_or_path": str(folder), "adapter_name_or_path": str(adapter),
                             "template": "auto", "export_dir": str(tmp_path / "merged"), "export_modelfile": False}),
               Console(file=printed, width=200))
    # each line is printed after its check passed (beyond the tolerance run_export raises ExportError)
    assert "verified: reloaded export vs source model, max" in printed.getvalue()
    if "images" in family_media(folder):
        assert "verified: reloaded export vs source model, prompt with an image" in printed.getvalue()


@pytest.mark.parametrize("family", FAMILIES)
def test_full_sft_two_steps(family, tiny_vlm, tmp_path):
    from lmforge.train.runner import run_training

    out = tmp_path / "full"
    run_training(build_config(train_settings(tiny_vlm(family), family, "full", out)))
    assert_two_finite_losses(out)
    assert (out / "model.safetensors").is_file() or (out / "model.safetensors.index.json").is_file()
