"""Every tiny family as a user runs it: `lmforge train` (LoRA and full, two steps on LLaMA-Factory's demo
rows with `template: auto`), `lmforge export` of the LoRA run (merged, reloaded, logits checked on text
and on a prompt with an image), and chat with an image equal to the model's own `generate`."""

import io
import json
import math

import pytest
from PIL import Image

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.testing.tiny_vlm import TINY_VLM_FAMILIES
from tests.conftest import run_cli
from tests.multimodal.test_families import PROCESSOR_KWARGS
from tests.refdata import refdata

DATASETS = {"images": "mllm_demo", "videos": "mllm_video_demo", "audios": "mllm_audio_demo"}
# GLM-4.xV cannot take images and videos in one forward (transformers); the others mix them in a batch
ONE_MEDIUM = {"glm4v", "glm4v_moe", "glm46v"}
FAMILIES = sorted(TINY_VLM_FAMILIES)


def family_media(folder) -> list[str]:
    from transformers import AutoProcessor

    from lmforge.data.multimodal.plugin import mm_plugin_for

    return list(mm_plugin_for(AutoProcessor.from_pretrained(folder)).markers)


def train(tmp_path, folder, family, finetuning_type):
    kinds = family_media(folder)
    datasets = ",".join(DATASETS[kind] for kind in (kinds[:1] if family in ONE_MEDIUM else kinds))
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    out = tmp_path / finetuning_type
    result = run_cli("train", str(config), f"model_name_or_path={folder}", "template=auto", f"dataset={datasets}",
                     f"dataset_dir={refdata('llamafactory_data')}", f"finetuning_type={finetuning_type}",
                     "max_steps=2", "max_samples=4", "per_device_train_batch_size=2", "learning_rate=1e-3",
                     "logging_steps=1", "report_to=none", "image_max_pixels=4096", "video_max_pixels=1024",
                     "video_maxlen=4", "cutoff_len=2048", f"output_dir={out}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    losses = [line["loss"] for line in map(json.loads, (out / "trainer_log.jsonl").read_text().splitlines())
              if "loss" in line]
    assert len(losses) == 2 and all(math.isfinite(loss) for loss in losses)
    return out


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))  # inherited by the CLI subprocess


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_lora_sft_then_export_merges_and_reloads_with_the_same_logits(family, tiny_vlm, tmp_path):
    adapter = train(tmp_path, tiny_vlm(family), family, "lora")
    assert (adapter / "adapter_model.safetensors").is_file() and (adapter / "processor_config.json").is_file()
    config = tmp_path / "export.yaml"
    config.write_text(f"model_name_or_path: {tiny_vlm(family)}\nadapter_name_or_path: {adapter}\ntemplate: auto\n"
                      f"export_dir: {tmp_path / 'merged'}\nexport_modelfile: false\n")
    result = run_cli("export", str(config))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verified: reloaded export vs source model, max" in result.stdout
    if "images" in family_media(tiny_vlm(family)):
        assert "verified: reloaded export vs source model, prompt with an image" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_full_sft_two_steps(family, tiny_vlm, tmp_path):
    out = train(tmp_path, tiny_vlm(family), family, "full")
    assert (out / "model.safetensors").is_file() or (out / "model.safetensors.index.json").is_file()


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(set(FAMILIES) - {"paligemma", "mllama"}))  # own layouts: test_generation
def test_chat_with_an_image_answers_as_the_models_own_generate(family, tiny_vlm):
    from lmforge.infer.factory import create_engine

    if "images" not in family_media(tiny_vlm(family)):
        pytest.skip(f"{family} takes no images")
    engine = create_engine(build_config({"model_name_or_path": str(tiny_vlm(family)), "template": "auto",
                                         "do_sample": False, "max_new_tokens": 6}))
    try:
        ask = [Message("user", "What is this?")]
        processor, marker = engine.media_encoder.processor, engine.media_encoder.plugin.markers["images"]
        text = engine.template.render_text([Message("user", marker + "What is this?")], system=engine.default_system,
                                           add_generation_prompt=True)
        image = Image.open(io.BytesIO(png())).convert("RGB")
        inputs = processor(text=[text], images=[image], add_special_tokens=False, return_tensors="pt",
                           **PROCESSOR_KWARGS.get(family, {}))
        inputs = {key: value.to(engine.model.dtype) if value.is_floating_point() else value  # Llama 4's bf16 pixels
                  for key, value in inputs.items()}
        expected = engine.model.generate(**inputs, max_new_tokens=6, do_sample=False,
                                         eos_token_id=engine.eos_token_ids, pad_token_id=engine.pad_token_id)
        answer = expected[0, inputs["input_ids"].shape[1]:].tolist()
        assert engine.encode(ask, images=[png()]) == inputs["input_ids"][0].tolist()
        [candidate] = engine.candidates(ask, images=[png()])
        assert list(candidate.token_ids) == [t for t in answer if t not in engine.eos_token_ids]
    finally:
        engine.close()
