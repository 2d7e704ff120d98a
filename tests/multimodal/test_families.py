"""Every tiny family in `lmforge.testing.tiny_vlm` through the processor-native path (or its hand-written
plugin): the example is exactly the processor's own expansion, only the answers are supervised, a
batch of LLaMA-Factory's demo rows trains, and packing either gives each example's padded logits or is refused.
`test_families_train_export.py` trains each family through `run_training` (LoRA and full) and exports it;
`test_families_cli.py` chats with an image per family and runs the commands end to end for a representative set."""

import pytest
import torch

from lmforge.data.conversation import Preference
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import Document, MediaPreference, MMEncoder, to_row
from lmforge.data.multimodal.media import MediaError, MediaOptions, decode_media
from lmforge.data.multimodal.packability import packing_refusal
from lmforge.data.multimodal.plugin import PLACEHOLDERS, mm_plugin_for
from lmforge.data.processors.sft import example_from_encoded
from lmforge.data.templates import get_template
from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.template import Message
from lmforge.testing.tiny_vlm import TINY_VLM_FAMILIES
from tests.multimodal.conftest import TEXT_ONLY, demo_conversations, load_vlm, logits_apart, train_steps
from tests.refdata import refdata

OPTIONS = MediaOptions(image_max_pixels=64 * 64, video_max_pixels=32 * 32, video_maxlen=4)
DEMO = {"images": "mllm_demo.json", "videos": "mllm_video_demo.json", "audios": "mllm_audio_demo.json"}
ARGUMENT = {"images": "images", "videos": "videos", "audios": "audio"}
# hand-written plugins change the sequence beyond the processor's expansion (prefix, BOS), or Voxtral's processor
# expands audio only through mistral-common's chat encoding; tested in test_plugins
OWN_LAYOUT = {"paligemma", "mllama", "voxtral"}
FAMILIES = sorted(TINY_VLM_FAMILIES)
# Chameleon's processor appends its separator unless told the text is for completion; a chat example has none
PROCESSOR_KWARGS = {"chameleon": {"return_for_text_completion": True}}


def encoder_for(processor, model, cutoff_len=2048):
    return MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, cutoff_len,
                     model_config=model.config)


def supervised(ids, labels):
    return [token for token, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX]


@pytest.mark.parametrize("family", sorted(set(FAMILIES) - OWN_LAYOUT))
def test_the_example_is_the_processors_expansion_and_only_answers_are_supervised(family, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = encoder_for(processor, model)
    template = get_template("chatml")
    assert encoder.plugin.markers, family
    for kind, marker in encoder.plugin.markers.items():
        [conversation] = demo_conversations(DEMO[kind], kind, 1)
        example = encoder.encode(conversation)
        text = template.render_text([Message(m.role, m.content.replace(PLACEHOLDERS[kind], marker))
                                     for m in conversation.messages])
        media = decode_media(conversation.media, OPTIONS, conversation.source)
        arguments = encoder.plugin.processor_kwargs(kind, media.items(kind)[0], media, 0)
        arguments[ARGUMENT[kind]] = media.items(kind)
        if kind == "videos":
            arguments["video_metadata"] = [encoder.plugin.processor_kwargs(kind, video, media, index)[
                "video_metadata"][0] for index, video in enumerate(media.items(kind))]
        expected = processor(text=[text], add_special_tokens=False, return_tensors="pt", **arguments,
                             **PROCESSOR_KWARGS.get(family, {}))
        assert example.input_ids == expected["input_ids"][0].tolist(), f"{family} {kind}"
        batch = MultimodalCollator(encoder, pad_to_multiple_of=None)([to_row(conversation)])
        for key, value in expected.items():
            if key in batch and key not in ("input_ids", "attention_mask", "labels"):
                ours, theirs = batch[key], value.to(batch[key].dtype)
                if ours.shape != theirs.shape:  # Idefics3: (items, tiles, ...) vs (1, items x tiles, ...), one view
                    ours, theirs = ours.flatten(0, 1), theirs.flatten(0, 1)
                torch.testing.assert_close(ours, theirs, msg=f"{family} {kind}: {key}")
        # the answers (and end of turn) are supervised exactly as in the same conversation without media
        text_only = [Message(m.role, m.content.replace(PLACEHOLDERS[kind], "")) for m in conversation.messages]
        plain = example_from_encoded(encode_conversation(template, processor.tokenizer, text_only),
                                     cutoff_len=2048, train_on_prompt=False, mask_history=False)
        assert supervised(example.input_ids, example.labels) == supervised(plain.input_ids, plain.labels)


@pytest.mark.parametrize("family", FAMILIES)
def test_a_batch_of_demo_rows_trains_and_packing_keeps_the_loss_or_is_refused(family, tiny_vlm):
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = encoder_for(processor, model)
    kinds = list(encoder.plugin.markers)
    collator = MultimodalCollator(encoder)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    image = refdata("llamafactory_data", "mllm_demo_data", "1.jpg")
    document = Document("A photo: <image> Two players celebrate a goal.", "docs:row 1", {"images": [str(image)]})
    for kind in kinds:  # GLM-4.xV cannot take images and videos in one forward (transformers)
        # SFT rows, a text-only row and (`stage: pt`) a document with its image
        items = [*demo_conversations(DEMO[kind], kind, 2), TEXT_ONLY, *([document] if kind == "images" else [])]
        batch = collator([to_row(item) for item in items])
        losses = train_steps(model, batch, 2, optimizer)
        assert all(map(torch.isfinite, torch.tensor(losses))) and losses[1] < losses[0], (family, kind, losses)

    if packing_refusal(encoder.plugin, model.config):
        with pytest.raises(MediaError, match=r"packing is not supported for .* models \(.+\); set `packing: false`"):
            MultimodalCollator(encoder, packing=True)
        return
    kind = kinds[0]
    items = [*demo_conversations(DEMO[kind], kind, 2), TEXT_ONLY]
    if kind == "images":  # a pretraining document with its image packs beside the conversations
        items.append(document)
    rows = [to_row(item) for item in items]
    padded, packed = MultimodalCollator(encoder)(rows), MultimodalCollator(encoder, packing=True)(rows)
    assert packed["input_ids"].shape[0] < len(items)
    packed.pop("num_examples"), packed.pop("num_real_tokens")
    model.eval()
    for ours, theirs in logits_apart(model, encoder, items, packed, padded):  # each example's logits, not only the loss
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5, msg=family)


@pytest.mark.parametrize("family", FAMILIES)
def test_ranking_rows_with_media_give_chosen_and_rejected_rows_sharing_the_media(family, tiny_vlm):
    """What multimodal DPO trains on: one forward pass over the chosen rows, then the rejected ones."""
    processor, model = load_vlm(tiny_vlm(family), family)
    encoder = encoder_for(processor, model)
    kind = next(iter(encoder.plugin.markers))
    [conversation] = demo_conversations(DEMO[kind], kind, 1)
    prompt, answer = conversation.messages[:-1], conversation.messages[-1].content  # the earlier turns are prompt
    pair = MediaPreference(Preference(prompt, None, answer, "I cannot tell.", conversation.source),
                           conversation.media)
    batch = MultimodalCollator(encoder)([to_row(pair)])
    chosen, rejected = batch["labels"]
    assert supervised(batch["input_ids"][0].tolist(), chosen.tolist()) != supervised(
        batch["input_ids"][1].tolist(), rejected.tolist())
    media_ids = torch.tensor(sorted(encoder.plugin.media_token_ids(processor.tokenizer)))
    assert torch.equal(torch.isin(batch["input_ids"][0], media_ids).sum(), torch.isin(batch["input_ids"][1],
                                                                                        media_ids).sum())
    with torch.no_grad():
        assert torch.isfinite(model(**batch).logits).all()
