"""`lmforge chat` with an image answers as the model's own `generate`, for every tiny family (in this process);
and `lmforge train` (LoRA and full, two steps on LLaMA-Factory's demo rows with `template: auto`) then
`lmforge export` of the LoRA run (merged, reloaded, logits checked on text and on a prompt with an image) as a
user runs them, in subprocesses, for one family per medium: images, video, audio, and an omni model's interleaved
sound and frames (full fine-tuning for one family).

Every family trains (LoRA and full) and exports in `test_families_train_export.py`, in this process, through
the same `run_training` / `run_export` the commands call: what a subprocess adds (argument parsing, the data and
media reaching a fresh process) is not family-specific; a subprocess per family and mode cost about an hour of CI.
`test_families.py` proves the processor expansion and packing per family.
"""

import io

import pytest
from PIL import Image

from lmforge.config import build_config
from lmforge.data.templates.template import Message
from lmforge.testing.tiny_vlm import TINY_VLM_FAMILIES
from tests.conftest import run_cli
from tests.multimodal.test_families import PROCESSOR_KWARGS
from tests.multimodal.test_families_train_export import assert_two_finite_losses, family_media, train_settings

FAMILIES = sorted(TINY_VLM_FAMILIES)
# one family per medium: images (qwen2_vl, a hand-written plugin), video (llava_next_video, a native one), audio
# (qwen2_audio), omni (qwen2_5_omni); every family's plugin and layout: test_families_train_export.py
END_TO_END = ["qwen2_vl", "llava_next_video", "qwen2_audio", "qwen2_5_omni"]
# full fine-tuning through the CLI differs from LoRA's only in what is trained and saved, nothing per family or
# medium: every family's full run is in test_families_train_export.py
FULL_END_TO_END = ["qwen2_vl"]


def train(tmp_path, folder, family, finetuning_type):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    out = tmp_path / finetuning_type
    settings = train_settings(folder, family, finetuning_type, out)
    result = run_cli("train", str(config), *(f"{key}={value}" for key, value in settings.items() if key != "stage"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_two_finite_losses(out)
    return out


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))  # inherited by the CLI subprocess


@pytest.mark.slow
@pytest.mark.parametrize("family", END_TO_END)
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
@pytest.mark.parametrize("family", FULL_END_TO_END)
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
