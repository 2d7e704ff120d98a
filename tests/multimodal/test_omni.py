"""Omni models (Qwen2.5-Omni, Qwen3-Omni thinkers): a row with a video and an audio clip (LLaMA-Factory's
mllm_video_audio_demo) carries both media through one example and trains."""

import json

import pytest
import torch

from lmforge.data.conversation import Conversation
from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import to_row
from lmforge.data.templates.template import Message
from tests.multimodal.conftest import load_vlm
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
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(2):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[1] < losses[0], losses
