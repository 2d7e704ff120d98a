import json

import pytest

from lmforge.data.conversation import Conversation
from lmforge.data.templates.template import Message
from tests.refdata import refdata

# family -> (plugin name: hand-written, or the processor-native one's family; demo dataset, media kind)
FAMILIES = {
    "qwen2_vl": ("qwen2_vl", "mllm_demo.json", "images"),
    "qwen2_5_vl": ("qwen2_vl", "mllm_demo.json", "images"),
    "llava": ("Llava", "mllm_demo.json", "images"),
    "llava_next": ("LlavaNext", "mllm_demo.json", "images"),
    "gemma3": ("Gemma3", "mllm_demo.json", "images"),
    "llama4": ("Llama4", "mllm_demo.json", "images"),
    "paligemma": ("paligemma", "mllm_demo.json", "images"),
    "mllama": ("mllama", "mllm_demo.json", "images"),
    "pixtral": ("Pixtral", "mllm_demo.json", "images"),
    "intern_vl": ("InternVL", "mllm_demo.json", "images"),
    "qwen2_audio": ("Qwen2Audio", "mllm_audio_demo.json", "audios"),
}


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory):
    """family -> folder of a tiny random model + real processor, built once per session."""
    from lmforge.testing.tiny_vlm import build_tiny_vlm

    built = {}

    def get(family: str):
        if family not in built:
            built[family] = build_tiny_vlm(tmp_path_factory.mktemp(family), family)
        return built[family]

    return get


def load_vlm(folder, family):
    from transformers import AutoProcessor

    from lmforge.testing.tiny_vlm import model_auto_class

    return AutoProcessor.from_pretrained(folder), model_auto_class(family).from_pretrained(folder)


def demo_conversations(name: str, kind: str, count: int) -> list[Conversation]:
    """The first rows of one of LLaMA-Factory's multimodal demo datasets, as conversations."""
    root = refdata("llamafactory_data")
    rows = json.loads((root / name).read_text())[:count]
    return [Conversation([Message(m["role"], m["content"]) for m in row["messages"]], None, f"{name}:row {i + 1}",
                         media={kind: [str(root / path) for path in row[kind]]}) for i, row in enumerate(rows)]


TEXT_ONLY = Conversation([Message("user", "Say hello."), Message("assistant", "Hello there.")], None, "text:row 1")


def train_steps(model, batch, steps: int, optimizer=None) -> list[float]:
    """`steps` AdamW steps (lr 1e-3 unless an optimizer is given) on one batch; the losses."""
    import torch

    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def logits_apart(model, encoder, items, packed, padded):
    """The packed rows' logits cut back into examples, and each example's logits padded: equal when packing keeps
    the examples apart (a loss alone can hide a small leak, e.g. a short convolution of random weights)."""
    import torch

    from lmforge.data.packing import pack_lengths

    lengths = [len(encoder.encode(item).input_ids) for item in items]
    with torch.no_grad():  # no KV cache (as LmforgeTrainer does for packed rows): per-example attention
        packed_logits, padded_logits = model(**packed, use_cache=False).logits, model(**padded).logits
    cut, start, row = [], 0, 0
    for members in pack_lengths(lengths, encoder.cutoff_len):
        for index in sorted(members):
            cut.append((packed_logits[row, start:start + lengths[index]], padded_logits[index, :lengths[index]]))
            start += lengths[index]
        row, start = row + 1, 0
    return cut
