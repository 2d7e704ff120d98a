"""A remote-code vision-language model (`trust_remote_code: true`; the folder's auto_map names its own
configuration, modeling and processing code, as Kimi-VL's and dots.ocr's do) is served by the processor-native
path: its processor expands its own image tokens, so lmforge trains, chats and exports it with no plugin. The
model is `remote_code_vlm/`, a tiny one written for this test."""

import io
import json
import math

import pytest
from PIL import Image
from rich.console import Console

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.errors import ModelError
from tests.multimodal.remote_code_vlm.build import build_remote_code_vlm
from tests.refdata import refdata

TOKENS_PER_IMAGE = 4  # a 16x16 image in 8x8 patches


@pytest.fixture(scope="module")
def remote_vlm(tmp_path_factory):
    return build_remote_code_vlm(tmp_path_factory.mktemp("remote_vlm"))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))


def settings(folder, **extra):
    return {"model_name_or_path": str(folder), "template": "auto", "trust_remote_code": True, **extra}


@pytest.mark.parametrize(("template", "says"), [("auto", "ships its own model code"),
                                                ("kimi_vl", "template `kimi_vl` is made for checkpoints whose")])
def test_without_trust_remote_code_the_error_says_to_set_it_before_weights_load(remote_vlm, tmp_path, template,
                                                                                says):
    from lmforge.preflight import preflight

    cfg = build_config({**settings(remote_vlm), "trust_remote_code": False, "template": template, "stage": "sft",
                        "dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data")),
                        "output_dir": str(tmp_path / "out")})
    with pytest.raises(ModelError, match=f"{says}.*set `trust_remote_code: true`"):
        preflight(cfg, "train")


def test_the_processor_native_plugin_serves_the_remote_processor(remote_vlm):
    from lmforge.data.multimodal.plugin import mm_plugin_for, plugin_for_template
    from lmforge.data.templates.registry import get_template
    from lmforge.model.kind import detect_kind
    from lmforge.model.loading import load_model_config, load_processor

    cfg = build_config(settings(remote_vlm))
    kind = detect_kind(load_model_config(cfg.model))
    assert (kind.kind, kind.auto_class) == ("image_text_to_text", "AutoModelForImageTextToText")
    assert "auto_map" in kind.reason
    processor = load_processor(cfg.model, kind)
    plugin = mm_plugin_for(processor)
    assert plugin.fallback and plugin.markers == {"images": "<|image_pad|>"}
    # a remote-code family's template (Kimi-VL's) takes the same path
    assert plugin_for_template(processor, get_template("kimi_vl")).fallback
    assert plugin.media_token_ids(processor.tokenizer) == {processor.image_token_id}


def test_lora_sft_two_steps_then_export_merges_and_reloads_with_the_same_logits(remote_vlm, tmp_path):
    from lmforge.export.pipeline import run_export
    from lmforge.train.runner import run_training

    adapter = tmp_path / "lora"
    run_training(build_config(settings(
        remote_vlm, stage="sft", dataset="mllm_demo", dataset_dir=str(refdata("llamafactory_data")),
        finetuning_type="lora", output_dir=str(adapter), max_steps=2, max_samples=4, per_device_train_batch_size=2,
        learning_rate=1e-3, logging_steps=1, report_to="none", cutoff_len=2048)))
    losses = [row["loss"] for row in map(json.loads, (adapter / "trainer_log.jsonl").read_text().splitlines())
              if "loss" in row]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses), losses
    printed = io.StringIO()
    merged = tmp_path / "merged"
    run_export(build_config(settings(remote_vlm, adapter_name_or_path=str(adapter), export_dir=str(merged),
                                     export_modelfile=False)), Console(file=printed, width=200))
    assert "verified: reloaded export vs source model, max" in printed.getvalue()
    assert "verified: reloaded export vs source model, prompt with an image" in printed.getvalue()
    # the export is itself a remote-code checkpoint: its code files travel with it
    assert {"modeling_tiny_remote.py", "processing_tiny_remote.py"} <= {p.name for p in merged.iterdir()}


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


def test_chat_with_an_image_answers_as_the_models_own_generate(remote_vlm):
    from lmforge.infer.factory import create_engine

    engine = create_engine(build_config(settings(remote_vlm, do_sample=False, max_new_tokens=6)))
    try:
        ask = [Message("user", "What is this?")]
        processor = engine.media_encoder.processor
        text = engine.template.render_text([Message("user", "<|image_pad|>What is this?")],
                                           system=engine.default_system, add_generation_prompt=True)
        image = Image.open(io.BytesIO(png())).convert("RGB")
        inputs = processor(text=[text], images=[image], add_special_tokens=False, return_tensors="pt")
        assert inputs["input_ids"][0].tolist().count(processor.image_token_id) == TOKENS_PER_IMAGE
        expected = engine.model.generate(**inputs, max_new_tokens=6, do_sample=False,
                                         eos_token_id=engine.eos_token_ids, pad_token_id=engine.pad_token_id)
        answer = expected[0, inputs["input_ids"].shape[1]:].tolist()
        assert engine.encode(ask, images=[png()]) == inputs["input_ids"][0].tolist()
        [candidate] = engine.candidates(ask, images=[png()])
        assert list(candidate.token_ids) == [t for t in answer if t not in engine.eos_token_ids]
    finally:
        engine.close()


@pytest.mark.slow
def test_lmforge_train_full_saves_a_model_that_reloads_with_its_code(remote_vlm, tmp_path):
    from transformers import AutoModelForImageTextToText

    from tests.conftest import run_cli

    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\ntrust_remote_code: true\n")
    out = tmp_path / "full"
    result = run_cli("train", str(config), f"model_name_or_path={remote_vlm}", "template=auto", "dataset=mllm_demo",
                     f"dataset_dir={refdata('llamafactory_data')}", "finetuning_type=full", f"output_dir={out}",
                     "max_steps=2", "max_samples=4", "per_device_train_batch_size=2", "report_to=none")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert {"modeling_tiny_remote.py", "processing_tiny_remote.py"} <= {p.name for p in out.iterdir()}
    model = AutoModelForImageTextToText.from_pretrained(out, trust_remote_code=True)
    assert type(model).__name__ == "TinyRemoteVLMForConditionalGeneration"
