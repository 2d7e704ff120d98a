"""Omni models (Qwen2.5-Omni, Qwen3-Omni thinkers): a row with a video and an audio clip (LLaMA-Factory's
mllm_video_audio_demo) carries both media through one example and trains."""

import json

import pytest
import torch

from lmforge.data.conversation import Conversation
from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import to_row
from lmforge.data.templates.template import Message
from tests.multimodal.conftest import load_vlm, train_steps
from tests.multimodal.test_families import encoder_for
from tests.refdata import refdata


def video_audio_rows(count: int) -> list[Conversation]:
    root = refdata("llamafactory_data")
    rows = json.loads((root / "mllm_video_audio_demo.json").read_text())[:count]
    return [Conversation([Message(m["role"], m["content"]) for m in row["messages"]], None,
                         f"mllm_video_audio_demo.json:row {i + 1}",
                         media={kind: [str(root / path) for path in row[kind]] for kind in ("videos", "audios")})
            for i, row in enumerate(rows)]


@pytest.mark.parametrize("family", ["qwen2_5_omni", "qwen3_omni"])
def test_a_row_with_a_video_and_its_audio_trains(family, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = encoder_for(processor, model)
    rows = video_audio_rows(2)
    example = encoder.encode(rows[0])
    ids = torch.tensor(example.input_ids)
    for token in (processor.video_token_id, processor.audio_token_id):
        assert (ids == token).sum() > 0, family
    batch = MultimodalCollator(encoder)([to_row(row) for row in rows])
    assert {"pixel_values_videos", "input_features", "feature_attention_mask"} <= set(batch)
    losses = train_steps(model, batch, 2)
    assert losses[1] < losses[0], losses


@pytest.mark.slow
def test_a_whole_omni_checkpoint_trains_its_thinker(tiny_vlm, tmp_path, monkeypatch):
    """A released Qwen2.5-Omni is the composite (thinker + talker + vocoder); `lmforge train` keeps the thinker."""
    from transformers import AutoProcessor, Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration

    from tests.conftest import run_cli
    from tests.multimodal.test_families_cli import train

    monkeypatch.setenv("LMFORGE_HOME", str(tmp_path / "home"))
    thinker = tiny_vlm("qwen2_5_omni")
    folder = tmp_path / "omni"
    thinker_config = load_vlm(thinker, "qwen2_5_omni")[1].config
    # no talker or vocoder weights: the composite without audio output, as lmforge loads it
    config = Qwen2_5OmniConfig(thinker_config=thinker_config.to_dict(), enable_audio_output=False)
    torch.manual_seed(0)
    Qwen2_5OmniForConditionalGeneration(config).save_pretrained(folder)
    AutoProcessor.from_pretrained(thinker).save_pretrained(folder)
    torch.save({}, folder / "spk_dict.pt")  # the talker's voices, which a released checkpoint ships beside it
    adapter = train(tmp_path, folder, "qwen2_5_omni", "lora")
    from safetensors import safe_open

    with safe_open(adapter / "adapter_model.safetensors", "pt") as weights:
        keys = list(weights.keys())
    # adapters on the thinker's language model only: not its towers, no talker
    assert keys and all(".language_model.layers." in key and "thinker" not in key for key in keys), keys[:4]
    # the base an adapter names is the checkpoint it was trained from, not where the thinker's config came from
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(folder)
    (tmp_path / "export.yaml").write_text(f"model_name_or_path: {folder}\nadapter_name_or_path: {adapter}\n"
                                          f"template: auto\nexport_dir: {tmp_path / 'merged'}\n"
                                          "export_modelfile: false\n")
    result = run_cli("export", str(tmp_path / "export.yaml"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "verified: reloaded export vs source model, max" in result.stdout
