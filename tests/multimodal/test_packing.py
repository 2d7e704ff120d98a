"""Packed multimodal rows: images stay with their text, position ids (3-D M-RoPE too) restart per
example, and a packed batch gives the same loss as the same examples padded."""

import pytest
import torch

from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import Document, MMEncoder, to_row
from lmforge.data.multimodal.media import MediaError, MediaOptions
from lmforge.data.multimodal.mrope import mrope_position_ids
from lmforge.data.multimodal.packability import packing_refusal
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.templates import get_template
from tests.multimodal.conftest import TEXT_ONLY, demo_conversations, load_vlm, logits_apart
from tests.refdata import refdata

OPTIONS = MediaOptions(image_max_pixels=64 * 64)
VIDEO_OPTIONS = MediaOptions(image_max_pixels=64 * 64, video_max_pixels=32 * 32, video_maxlen=4)


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


# families whose packed rows keep their examples apart: 1-D positions (the processor's media grids, where it returns
# them, only shape the vision tower: Kimi-K2.5, VideoLLaMA3, Ovis2.5, LLaVA-OneVision-1.5), or 3-D positions the
# plugin computes per example (Qwen2-VL, Qwen2.5-VL)
PACKABLE = ["qwen2_vl", "qwen2_5_vl", "llava", "llava_next", "llama4", "pixtral", "intern_vl", "qwen2_audio",
            "kimi_k25", "video_llama_3", "ovis2_5", "llava_onevision1_5"]
DEMO = {"images": "mllm_demo.json", "videos": "mllm_video_demo.json", "audios": "mllm_audio_demo.json"}


def packed_and_padded(encoder, items, force=False):
    """The same examples collated packed and padded; `force` packs a model the collator refuses to."""
    rows = [to_row(item) for item in items]
    packer = MultimodalCollator(encoder, packing=not force)
    packer.packing = True
    padded, packed = MultimodalCollator(encoder)(rows), packer(rows)
    assert packed["input_ids"].shape[0] < len(items) and "attention_mask" not in packed
    assert int(packed.pop("num_examples")) == len(items)
    assert int(packed.pop("num_real_tokens")) == int(padded["attention_mask"].sum())
    return packed, padded


@pytest.mark.parametrize("family", PACKABLE)
def test_packed_batch_has_the_logits_and_loss_of_the_padded_batch(family, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    model.eval()
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), VIDEO_OPTIONS, 1024,
                        model_config=model.config)
    assert packing_refusal(encoder.plugin, model.config) is None
    for kind in encoder.plugin.markers:
        items = [*demo_conversations(DEMO[kind], kind, 2), TEXT_ONLY, *(documents() if kind == "images" else [])]
        packed, padded = packed_and_padded(encoder, items)
        for ours, theirs in logits_apart(model, encoder, items, packed, padded):
            torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5, msg=f"{family} {kind}")
        with torch.no_grad():
            torch.testing.assert_close(model(**packed, use_cache=False).loss, model(**padded).loss,
                                       rtol=1e-5, atol=1e-5)


# family -> what in its model merges packed examples (the refusal names it)
REFUSED = {
    "gemma3": r"model reads `token_type_ids` to let each media item's tokens attend to one another",
    "lfm2_vl": r"decoder's short-convolution layers carry their state from the end of one packed example",
    "lfm3_vl": r"decoder's short-convolution layers carry their state from the end of one packed example",
    "qwen2_5_omni": r"computes 3-D M-RoPE positions from the media grids over each whole row \(`Qwen2_5Omni\w+"
                    r"\.get_rope_index`\)",
    "minicpmv4_6": r"decoder's linear-attention \(recurrent\) layers carry their state",
    "dots3_note": r"sparse attention's indexer picks each token's top-k keys over the whole row",
}


@pytest.mark.parametrize("family", sorted(REFUSED))
def test_families_that_cannot_pack_say_why_from_the_config_alone(family, tiny_vlm):
    """The refusal comes from the model's config (no weights loaded), as `build_datasets` builds the collator."""
    from transformers import AutoConfig, AutoProcessor

    folder = tiny_vlm(family)
    processor = AutoProcessor.from_pretrained(folder)
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024,
                        model_config=AutoConfig.from_pretrained(folder))
    with pytest.raises(MediaError, match=rf"packing is not supported for `\w+` models \(.*{REFUSED[family]}.*"
                                         r"set `packing: false`"):
        MultimodalCollator(encoder, packing=True)


@pytest.mark.parametrize("family", ["lfm2_vl", "qwen2_5_omni", "dots3_note"])
def test_the_refused_families_packed_logits_would_differ(family, tiny_vlm):
    """What the refusal prevents: packed anyway, LFM2-VL's convolution carries the end of one example into the next
    (a small difference the logit comparison above catches), Qwen2.5-Omni's M-RoPE runs on over the row and
    dots3-note's sparse-attention indexer picks keys from the other examples."""
    processor, model = load_vlm(tiny_vlm(family), family)
    model.eval()
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024,
                        model_config=model.config)
    items = [*demo_conversations("mllm_demo.json", "images", 2), TEXT_ONLY]
    packed, padded = packed_and_padded(encoder, items, force=True)
    pieces = logits_apart(model, encoder, items, packed, padded)
    assert max((ours - theirs).abs().max().item() for ours, theirs in pieces) > 1e-4


def test_gemma3n_packs_its_images_and_audio_with_the_padded_loss(tiny_vlm):
    """Gemma 3n's processor returns `token_type_ids`, which its model never reads (causal masks, 1-D positions):
    packed rows stay apart, with the padded loss; with positions that do not restart the loss differs."""
    processor, model = load_vlm(tiny_vlm("gemma3n"), "gemma3n")
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, 1024,
                        model_config=model.config)
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
