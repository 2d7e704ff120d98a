"""`lmforge train` on tiny vision/audio-language models, as a user runs it: LLaMA-Factory's multimodal
demo data (images, videos, audio) for sft, and the `examples/multimodal/` configs: ranking rows with
images for dpo, image documents mixed with text-only ones for pt with packing."""

import json
import math
import re

import pytest
import torch
from safetensors.torch import load_file

from lmforge.config import build_config
from lmforge.errors import TemplateError
from tests.conftest import ROOT, run_cli
from tests.refdata import refdata

COMMON = ["max_samples=4", "per_device_train_batch_size=4", "logging_steps=1", "learning_rate=1e-2",
          "report_to=none", "image_max_pixels=4096", "video_max_pixels=1024", "video_maxlen=4", "cutoff_len=2048"]
SAVED = ["adapter_config.json", "adapter_model.safetensors", "processor_config.json", "tokenizer.json",
         "chat_template.jinja", "train_summary.json"]


EXAMPLES = ROOT / "examples" / "multimodal"


def train(tmp_path, stage, model, *overrides):
    """`stage`: a stage name, or an example config."""
    config = EXAMPLES / f"{stage}.yaml" if stage in ("dpo", "pt", "kto", "rm") else tmp_path / "run.yaml"
    if stage == "sft":
        config.write_text(f"stage: {stage}\n")
    out = tmp_path / "out"
    result = run_cli("train", str(config), f"model_name_or_path={model}", *COMMON, f"output_dir={out}", *overrides)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    losses = [line["loss"] for line in map(json.loads, (out / "trainer_log.jsonl").read_text().splitlines())
              if "loss" in line]
    assert losses and all(math.isfinite(loss) for loss in losses)
    return out, result.stdout, losses


def reported_text_tokens(stdout):
    """The data report's text-token count (printed before step 1)."""
    found = re.search(r"text tokens: ([\d,]+), supervised: ([\d,]+)", stdout)
    assert found, stdout
    return int(found[1].replace(",", "")), int(found[2].replace(",", ""))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))  # inherited by the CLI subprocess


@pytest.mark.slow
@pytest.mark.parametrize(("family", "template", "datasets", "media"), [
    ("qwen2_vl", "qwen2_vl", "mllm_demo,mllm_video_demo,identity", "6 images, 3 videos"),
    ("llava", "llava", "mllm_demo", "6 images"),
    ("gemma3", "gemma3", "mllm_demo", "6 images"),
    ("qwen2_audio", "qwen2_audio", "mllm_audio_demo", "3 audios"),
])
def test_lora_sft_on_the_demo_data_saves_adapter_and_processor(family, template, datasets, media, tiny_vlm,
                                                               tmp_path):
    from transformers import AutoProcessor

    data = refdata("llamafactory_data")
    packing = "packing=true" if family == "qwen2_vl" else "packing=false"  # gemma3 refuses packing
    out, stdout, losses = train(tmp_path, "sft", tiny_vlm(family), f"template={template}", f"dataset={datasets}",
                                f"dataset_dir={data}", "finetuning_type=lora", "lora_target=all", "max_steps=3",
                                packing)
    tokens, supervised = reported_text_tokens(stdout)
    assert tokens > supervised > 0 and f"media: {media};" in stdout
    assert ("with the `qwen2_vl` plugin" if family == "qwen2_vl" else "with the processor-native plugin") in stdout
    assert losses[-1] < losses[0]
    for name in SAVED:
        assert (out / name).is_file(), name
    assert type(AutoProcessor.from_pretrained(out)).__name__ == type(AutoProcessor.from_pretrained(
        tiny_vlm(family))).__name__
    adapted = load_file(out / "adapter_model.safetensors")
    assert not [key for key in adapted if "vision" in key or "visual" in key or "audio_tower" in key]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["supervised_tokens_per_s"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_lora_dpo_with_images_against_the_adapter_disabled_base(family, tiny_vlm, tmp_path):
    out, stdout, losses = train(tmp_path, "dpo", tiny_vlm(family), f"template={family}",
                                f"dataset_dir={EXAMPLES / 'data'}", f"media_dir={refdata('llamafactory_data')}",
                                "max_steps=3")
    assert abs(losses[0] - math.log(2)) < 1e-4  # the reference is the policy before its first update
    assert losses[-1] < losses[0]
    tokens, supervised = reported_text_tokens(stdout)
    assert tokens > supervised > 0 and "media: 4 images;" in stdout
    assert "example 1 chosen" in stdout and "example 1 rejected" in stdout
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert all("rewards/accuracies" in entry for entry in history if "loss" in entry)
    for name in SAVED:
        assert (out / name).is_file(), name


@pytest.mark.slow
@pytest.mark.parametrize(("stage", "media"), [("kto", "4 images"), ("rm", "4 images")])
def test_lora_kto_and_reward_model_on_a_vlm_train_with_the_images(stage, media, tiny_vlm, tmp_path):
    """`examples/multimodal/kto.yaml` and `rm.yaml` as they are, on the tiny Qwen2-VL."""
    out, stdout, losses = train(tmp_path, stage, tiny_vlm("qwen2_vl"), f"dataset_dir={EXAMPLES / 'data'}",
                                f"media_dir={refdata('llamafactory_data')}", "max_steps=2",
                                "per_device_train_batch_size=2")
    assert len(losses) == 2 and f"media: {media};" in stdout and "text only" not in stdout
    assert ("example 1 desirable" if stage == "kto" else "example 1 chosen") in stdout
    if stage == "rm":
        assert "Qwen2VLForSequenceClassification" in stdout
    for name in SAVED:
        assert (out / name).is_file(), name
    adapted = load_file(out / "adapter_model.safetensors")
    assert not [key for key in adapted if "visual" in key]
    assert any("score" in key for key in adapted) == (stage == "rm")  # the reward head trains and is saved


def changed(before, after, prefix):
    keys = [key for key in before if key.startswith(prefix)]
    assert keys, prefix
    return any(not torch.equal(before[key], after[key]) for key in keys)


@pytest.mark.slow
def test_pt_with_images_packs_as_padding_would_and_honours_the_freeze_flags(tiny_vlm, tmp_path):
    """Packed rows (3-D M-RoPE positions restarting per document) give the first step the same loss as
    the same documents padded; full fine-tuning keeps frozen parts bit-identical."""
    folder = tiny_vlm("qwen2_vl")
    base = load_file(folder / "model.safetensors")
    runs = {}
    for packing, freeze in [("true", []), ("false", ["freeze_vision_tower=false", "freeze_multi_modal_projector=false",
                                                     "freeze_language_model=true"])]:
        run_dir = tmp_path / f"packing-{packing}"
        run_dir.mkdir()
        out, stdout, losses = train(run_dir, "pt", folder, f"dataset_dir={EXAMPLES / 'data'}",
                                    f"media_dir={refdata('llamafactory_data')}", "max_steps=1",
                                    "per_device_train_batch_size=6", "cutoff_len=256", f"packing={packing}", *freeze,
                                    "bf16=false")  # packed vs padded agree to fp32's resolution, not bf16's
        assert reported_text_tokens(stdout)[0] > 0 and "media: 3 images;" in stdout
        runs[packing] = (load_file(out / "model.safetensors"), losses)
    assert runs["true"][1][0] == pytest.approx(runs["false"][1][0], abs=1e-4)
    packed, padded = runs["true"][0], runs["false"][0]
    assert changed(base, packed, "model.layers.") and not changed(base, packed, "visual.")
    assert not changed(base, padded, "model.layers.") and changed(base, padded, "visual.")


def test_a_template_of_another_family_fails_before_training(tiny_vlm, tmp_path):
    from lmforge.train.runner import run_training

    cfg = build_config({"model_name_or_path": str(tiny_vlm("qwen2_vl")), "template": "llava", "stage": "sft",
                        "dataset": "mllm_demo", "dataset_dir": str(refdata("llamafactory_data")),
                        "output_dir": str(tmp_path / "out")})
    with pytest.raises(TemplateError, match=r"template `llava` is made for `llava` models, but the model's processor "
                                            r"\(Qwen2VLProcessor\) is served by the `qwen2_vl` plugin"):
        run_training(cfg)
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_data_preview_shows_a_multimodal_example_as_the_collator_encodes_it(tiny_vlm, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("stage: sft\n")
    result = run_cli("data", "preview", str(config), f"model_name_or_path={tiny_vlm('llava')}", "template=llava",
                     "dataset=mllm_demo", f"dataset_dir={refdata('llamafactory_data')}", "image_max_pixels=4096",
                     "--examples", "1")
    assert result.returncode == 0, result.stderr
    assert "media: 8 images;" in result.stdout
    # 4 tokens per image; the marker is what LLaVA's processor chat template writes for one image (`<image>\n`)
    assert "USER: <image><image><image><image>\nWho are they? ASSISTANT:" in result.stdout


def test_vlm_chat_shows_no_library_notices_unless_verbose(tiny_vlm, tmp_path):
    config = tmp_path / "chat.yaml"
    config.write_text(f"model_name_or_path: {tiny_vlm('qwen2_vl')}\ntemplate: qwen2_vl\nmax_new_tokens: 2\n")
    quiet = run_cli("chat", str(config), "--prompt", "hi")
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert quiet.stderr == ""  # no `use_fast` deprecation, no progress bars
    verbose = run_cli("--verbose", "chat", str(config), "--prompt", "hi")
    assert verbose.returncode == 0 and "Loading weights" in verbose.stderr
