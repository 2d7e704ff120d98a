"""LLaMA-Factory's v0.9.3 Qwen2.5-VL and Llama 4 examples on tiny random VLMs of those families (real processors):
only the model, adapter, data and output paths change, plus the one-step smoke-run size. The ZeRO-3 ones run under
the CLI, as in tests/train/test_llamafactory_deepspeed_examples.py."""

import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.export.pipeline import run_export
from lmforge.infer.factory import create_engine
from lmforge.train.runner import run_training
from tests.llamafactory_examples import example
from tests.refdata import refdata
from tests.train.test_llamafactory_deepspeed_examples import cli_trains_one_step

# a tiny Llama 4's image takes ~200 tokens: the smoke run's cutoff_len must not cut through them
VLM_CUTOFF = {"cutoff_len": 320}


def rlhf_v_here(folder: Path) -> Path:
    """A dataset_dir whose `rlhf_v` (LLaMA-Factory's entry reads the hub's llamafactory/RLHF-V, which the tests
    cannot reach) is two rows of that dataset's columns, on a demo image."""
    entry = json.loads((refdata("llamafactory_data") / "dataset_info.json").read_text())["rlhf_v"]
    entry = {**{key: value for key, value in entry.items() if key != "hf_hub_url"}, "file_name": "rlhf_v.json"}
    image = str(refdata("llamafactory_data") / "mllm_demo_data" / "1.jpg")
    rows = [{"conversations": [{"from": "human", "value": f"<image>{question}"}], "images": [image],
             "chosen": {"from": "gpt", "value": "A person in a field."}, "rejected": {"from": "gpt", "value": "A car."}}
            for question in ("What is in the image?", "Describe the picture.")]
    folder.mkdir()
    (folder / "rlhf_v.json").write_text(json.dumps(rows))
    (folder / "dataset_info.json").write_text(json.dumps({"rlhf_v": entry}))
    return folder


def trains_one_step(raw, name):
    summary = run_training(build_config(raw, source=name), Console(quiet=True))
    assert summary["steps"] == 1 and math.isfinite(summary["final_loss"])


@pytest.fixture(scope="module")
def qwen2_5vl_adapter(tiny_vlm, tmp_path_factory):
    name = "train_lora/qwen2_5vl_lora_sft.yaml"
    raw = example(name, tmp_path_factory.mktemp("lora"), str(tiny_vlm("qwen2_5_vl")))
    trains_one_step({**raw, **VLM_CUTOFF}, name)  # the sft example's one step, made once for the merge example too
    return raw["output_dir"]


@pytest.mark.slow
def test_the_qwen2_5vl_lora_sft_example_trains_one_step_and_saves_its_adapter(qwen2_5vl_adapter):
    assert (Path(qwen2_5vl_adapter) / "adapter_model.safetensors").is_file()


@pytest.mark.slow
def test_the_qwen2_5vl_lora_dpo_example_trains_one_step(tiny_vlm, tmp_path):
    name = "train_lora/qwen2_5vl_lora_dpo.yaml"
    raw = example(name, tmp_path, str(tiny_vlm("qwen2_5_vl")), dataset_dir=str(rlhf_v_here(tmp_path / "data")))
    trains_one_step({**raw, **VLM_CUTOFF}, name)


@pytest.mark.slow
@pytest.mark.parametrize("name, family", [("train_full/qwen2_5vl_full_sft.yaml", "qwen2_5_vl"),
                                          ("train_lora/llama4_lora_sft_ds3.yaml", "llama4")])
def test_zero3_vlm_example_trains_one_step(name, family, tiny_vlm, tmp_path, monkeypatch):
    monkeypatch.delenv("MASTER_PORT", raising=False)
    cli_trains_one_step({**example(name, tmp_path, str(tiny_vlm(family))), **VLM_CUTOFF}, tmp_path)


@pytest.mark.slow
def test_the_qwen2_5vl_merge_example_exports_a_model_that_reloads(qwen2_5vl_adapter, tiny_vlm, tmp_path):
    name = "merge_lora/qwen2_5vl_lora_sft.yaml"
    raw = {**example(name, tmp_path, str(tiny_vlm("qwen2_5_vl"))), "adapter_name_or_path": qwen2_5vl_adapter}
    result = run_export(build_config(raw, source=name), Console(quiet=True))
    # run_export reloads what it wrote and raises ExportError where its logits drift from the source's
    assert result.reports and (result.export_dir / "config.json").is_file()


@pytest.mark.slow
def test_the_qwen2_5vl_inference_example_answers_a_turn_with_an_image(tiny_vlm, tmp_path):
    name = "inference/qwen2_5vl.yaml"
    raw = {**example(name, tmp_path, str(tiny_vlm("qwen2_5_vl"))), "max_new_tokens": 8}
    engine = create_engine(build_config(raw, source=name))
    image = (refdata("llamafactory_data") / "mllm_demo_data" / "1.jpg").read_bytes()
    try:
        assert engine.chat([Message("user", "<image>What is in the picture?")], images=[image]).strip()
    finally:
        engine.close()
