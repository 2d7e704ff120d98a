"""Packed multimodal rows: images stay with their text, position ids (3-D M-RoPE too) restart per
example, and a packed batch gives the same loss as the same examples padded."""

import pytest
import torch

from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import Document, MMEncoder, to_row
from lmforge.data.multimodal.media import MediaError, MediaOptions
from lmforge.data.multimodal.mrope import mrope_position_ids
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.templates import get_template
from tests.multimodal.conftest import FAMILIES, TEXT_ONLY, demo_conversations, load_vlm
from tests.refdata import refdata

OPTIONS = MediaOptions(image_max_pixels=64 * 64)


def documents() -> list[Document]:
    images = refdata("llamafactory_data", "mllm_demo_data")
    return [
        Document("A photo: <image> Two players celebrate a goal.", "docs:row 1", {"images": [str(images / "1.jpg")]}),
        Document("Plain text about football, no picture at all.", "docs:row 2"),
        Document("<image> first, then <image> second.", "docs:row 3",
                 {"images": [str(images / "2.jpg"), str(images / "3.jpg")]}),
    ]


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_mrope_ids_equal_the_models_own(family, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 2048,
                        model_config=model.config)
    items = [*documents(), *demo_conversations("mllm_demo.json", "images", 2),
             *demo_conversations("mllm_video_demo.json", "videos", 1)]
    for item in items:
        example = encoder.encode(item)
        if example.position_ids is None:
            continue
        ids = torch.tensor([example.input_ids])
        tensors = example.processed.tensors
        kwargs = {f"{kind}_grid_thw": torch.cat([t[f"{kind}_grid_thw"] for t in tensors[f"{kind}s"]])
                  for kind in ("image", "video") if tensors.get(f"{kind}s")}
        if family == "qwen2_5_vl" and tensors.get("videos"):
            kwargs["second_per_grid_ts"] = torch.cat([t["second_per_grid_ts"] for t in tensors["videos"]])
        types = encoder.plugin.token_type_ids(ids, processor.tokenizer)
        expected, _ = model.model.get_rope_index(ids, types, **kwargs)
        assert torch.equal(example.position_ids, expected[:, 0]), item.source
    assert mrope_position_ids([0, 0], {}, 2).tolist() == [[0, 1]] * 3


PACKABLE = ["qwen2_vl", "qwen2_5_vl", "llava", "llava_next", "llama4", "pixtral", "intern_vl", "qwen2_audio"]


@pytest.mark.parametrize("family", PACKABLE)
def test_packed_batch_has_the_loss_of_the_padded_batch(family, tiny_vlm):
    _, dataset, kind = FAMILIES[family]
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024)
    items = [*demo_conversations(dataset, kind, 2), TEXT_ONLY]
    if kind == "images":
        items += documents()
    rows = [to_row(item) for item in items]
    padded = MultimodalCollator(encoder)(rows)
    packed = MultimodalCollator(encoder, packing=True)(rows)
    assert packed["input_ids"].shape[0] < len(items) and "attention_mask" not in packed
    assert int(packed.pop("num_examples")) == len(items)
    assert int(packed.pop("num_real_tokens")) == int(padded["attention_mask"].sum())
    with torch.no_grad():  # no KV cache (as LmforgeTrainer does for packed rows): per-example attention
        packed_loss = model(**packed, use_cache=False).loss
        torch.testing.assert_close(packed_loss, model(**padded).loss, rtol=1e-5, atol=1e-5)


def test_families_that_cannot_pack_say_so(tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("gemma3"), "gemma3")
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024)
    with pytest.raises(MediaError, match=r"packing is not supported for `Gemma3` models \(its model reads "
                                         r"`token_type_ids`.*set `packing: false`"):
        MultimodalCollator(encoder, packing=True)


def test_gemma3n_packs_its_images_and_audio_with_the_padded_loss(tiny_vlm):
    """Gemma 3n's processor returns `token_type_ids`, which its model never reads (causal masks, 1-D positions):
    packed rows stay apart, with the padded loss; with positions that do not restart the loss differs."""
    processor, model = load_vlm(tiny_vlm("gemma3n"), "gemma3n")
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024)
    model.eval()
    for dataset, kind in (("mllm_demo.json", "images"), ("mllm_audio_demo.json", "audios")):
        rows = [to_row(item) for item in [*demo_conversations(dataset, kind, 2), TEXT_ONLY]]
        padded, packed = MultimodalCollator(encoder)(rows), MultimodalCollator(encoder, packing=True)(rows)
        window = model.config.text_config.sliding_window
        assert packed["input_ids"].shape[0] == 1 and packed["input_ids"].shape[1] > window
        packed.pop("num_examples"), packed.pop("num_real_tokens")
        with torch.no_grad():
            packed_loss = model(**packed, use_cache=False).loss
            torch.testing.assert_close(packed_loss, model(**padded).loss, rtol=1e-5, atol=1e-5)
            merged = model(**{**packed, "position_ids": torch.arange(packed["input_ids"].shape[1])[None]},
                           use_cache=False).loss
        assert abs(merged - packed_loss) > 1e-4, kind
