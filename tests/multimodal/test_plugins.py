"""Every plugin on a tiny random model of its family with the family's real processor: the token
runs and tensors equal the processor's own, and mixed text/media batches train."""

from dataclasses import replace

import pytest
import torch

from lmforge.data.multimodal.collator import MultimodalCollator
from lmforge.data.multimodal.examples import MMEncoder, to_row
from lmforge.data.multimodal.media import MediaOptions, decode_media
from lmforge.data.multimodal.plugin import PLACEHOLDERS, mm_plugin_for
from lmforge.data.templates import get_template
from tests.multimodal.conftest import FAMILIES, TEXT_ONLY, demo_conversations, load_vlm, train_steps

OPTIONS = MediaOptions(image_max_pixels=64 * 64)


def encoder_for(processor, cutoff_len=1024, **kwargs):
    return MMEncoder(processor, mm_plugin_for(processor), get_template("chatml"), OPTIONS, cutoff_len, **kwargs)


@pytest.mark.parametrize("family", FAMILIES)
def test_plugin_trains_a_tiny_model_on_mixed_batches(family, tiny_vlm):
    plugin_name, dataset, kind = FAMILIES[family]
    processor, model = load_vlm(tiny_vlm(family), family)
    assert mm_plugin_for(processor).name == plugin_name
    conversations = [*demo_conversations(dataset, kind, 2), TEXT_ONLY]
    collator = MultimodalCollator(encoder_for(processor))
    batch = collator([to_row(c) for c in conversations])
    media_ids = collator.encoder.plugin.media_token_ids(processor.tokenizer)
    assert all(batch["labels"][torch.isin(batch["input_ids"], torch.tensor(list(media_ids)))] == -100)
    losses = train_steps(model, batch, 3)
    assert all(map(torch.isfinite, map(torch.tensor, losses))) and losses[-1] < losses[0]

    text_batch = collator([to_row(TEXT_ONLY)])  # no media at all: no fake image, no pixel tensors
    assert not {"pixel_values", "input_features"} & set(text_batch)
    assert torch.isfinite(model(**text_batch).loss)


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "paligemma"])
def test_token_runs_equal_the_processor_expansion(family, tiny_vlm):
    """The ids and tensors of a whole example equal the real processor's on the same rendered text."""
    _, dataset, kind = FAMILIES[family]
    processor, _ = load_vlm(tiny_vlm(family), family)
    encoder = encoder_for(processor)
    [conversation] = demo_conversations(dataset, kind, 1)
    example = encoder.encode(conversation)
    marker = encoder.plugin.markers[kind]
    text = get_template("chatml").render_text(
        [type(m)(m.role, m.content.replace(PLACEHOLDERS[kind], marker)) for m in conversation.messages])
    media = decode_media(conversation.media, OPTIONS, conversation.source).items(kind)
    argument = {"images": "images", "audios": "audio"}[kind]
    if family == "mllama":
        media = [media]  # mllama takes one list of images per text
    expected = processor(text=[text], add_special_tokens=False, return_tensors="pt", **{argument: media})
    expected_ids = expected["input_ids"][0].tolist()
    if family == "mllama":  # its processor puts BOS in front of any text; lmforge leaves BOS to the template
        expected_ids = expected_ids[1:]
    assert example.input_ids == expected_ids
    batch = MultimodalCollator(encoder, pad_to_multiple_of=None)([to_row(conversation)])
    tensors = [key for key in expected if key not in ("input_ids", "attention_mask", "labels")]
    assert tensors
    if family == "mllama":  # without the processor's leading BOS
        expected["cross_attention_mask"] = expected["cross_attention_mask"][:, 1:]
    for key in tensors:  # per-item processing, batched by the plugin == the processor's own batch
        wanted = expected[key].to(batch[key].dtype)  # llama4's bfloat16 pixels are passed as float32
        torch.testing.assert_close(batch[key], wanted, msg=f"{family}: {key}")


def test_paligemma_puts_the_image_tokens_in_front_of_the_sequence(tiny_vlm):
    processor, _ = load_vlm(tiny_vlm("paligemma"), "paligemma")
    [conversation] = demo_conversations("mllm_demo.json", "images", 1)
    example = encoder_for(processor).encode(conversation)
    image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
    prefix = processor.image_seq_length * len(conversation.media["images"])
    assert example.input_ids[:prefix] == [image_id] * prefix and image_id not in example.input_ids[prefix:]
    assert "<image>" not in processor.tokenizer.decode(example.input_ids[prefix:])


@pytest.mark.parametrize("text", ["<image><image>Which one is sharper?", "<image>\n<image> <image>Compare them."])
def test_idefics2_images_side_by_side_and_before_a_word_are_its_processors_text(text, tiny_vlm):
    """Idefics2's processor edits the text around its images (a shared boundary, a space before a word)."""
    from lmforge.data.conversation import Conversation
    from lmforge.data.templates.template import Message
    from tests.refdata import refdata

    processor, _ = load_vlm(tiny_vlm("idefics2"), "idefics2")
    count = text.count("<image>")
    images = [str(refdata("llamafactory_data", "mllm_demo_data", f"{n}.jpg")) for n in range(1, count + 1)]
    conversation = Conversation([Message("user", text), Message("assistant", "The first.")], None, "test:row 1",
                                media={"images": images})
    example = encoder_for(processor).encode(conversation)
    rendered = get_template("chatml").render_text(conversation.messages)
    decoded = decode_media(conversation.media, OPTIONS, conversation.source)
    expected = processor(text=[rendered.replace(PLACEHOLDERS["images"], "<image>")], images=[decoded.images],
                         add_special_tokens=False)
    assert example.input_ids == expected["input_ids"][0]


def test_voxtral_examples_are_mistral_commons_own_encoding(tiny_vlm, tmp_path):
    """Voxtral's processor expands audio only through mistral-common (`apply_chat_template`): a demo row encoded
    with `template: auto` (the chat template converted from the Tekken file) equals mistral-common's encoding of the
    same conversation with that Tekken file, answer and features included; only the answer is supervised."""
    import soundfile
    from transformers import VoxtralProcessor
    from transformers.tokenization_mistral_common import MistralCommonBackend

    from lmforge.data.templates.auto import resolve_template
    from lmforge.testing.tiny_vlm_audio import write_tiny_tekken

    processor, _ = load_vlm(tiny_vlm("voxtral"), "voxtral")
    write_tiny_tekken(tmp_path / "tekken.json")
    mistral = VoxtralProcessor(feature_extractor=processor.feature_extractor,
                               tokenizer=MistralCommonBackend.from_pretrained(tmp_path, mode="finetuning"))
    [demo] = demo_conversations("mllm_audio_demo.json", "audios", 1)
    # the demo clip as 16-bit PCM (what mistral-common reads audio files as), so both sides read the same samples
    [clip] = decode_media(demo.media, OPTIONS, demo.source).items("audios")
    soundfile.write(tmp_path / "clip.wav", clip, OPTIONS.audio_sampling_rate, subtype="PCM_16")
    conversation = replace(demo, media={"audios": [str(tmp_path / "clip.wav")]})
    question, answer = (m.content for m in conversation.messages)
    encoder = MMEncoder(processor, mm_plugin_for(processor), resolve_template(None, processor.tokenizer), OPTIONS,
                        2048)
    example = encoder.encode(conversation)
    expected = mistral.apply_chat_template(
        [{"role": "user", "content": [{"type": "audio", "path": str(tmp_path / "clip.wav")},
                                      {"type": "text", "text": question.replace(PLACEHOLDERS["audios"], "")}]},
         {"role": "assistant", "content": answer}], tokenize=True, return_dict=True)
    assert example.input_ids == expected["input_ids"][0].tolist()
    supervised = [token for token, label in zip(example.input_ids, example.labels, strict=True) if label != -100]
    assert processor.tokenizer.decode(supervised) == answer + processor.tokenizer.eos_token
    batch = MultimodalCollator(encoder)([to_row(conversation)])
    assert batch["input_features"].shape == (1, 128, 3000)  # one 30-second window of 128 mel bins
    torch.testing.assert_close(batch["input_features"], expected["input_features"])


@pytest.mark.parametrize("family", ["minicpmv4_6", "minicpm_ocr"])
def test_minicpmv_rows_with_two_images_are_its_processors_ids_and_packed_pixels(family, tiny_vlm):
    """MiniCPM-V (and MiniCPM-OCR) number the images of a row and join every image's patches along one axis."""
    from lmforge.data.conversation import Conversation
    from lmforge.data.templates.template import Message
    from tests.refdata import refdata

    processor, model = load_vlm(tiny_vlm(family), family)
    images = [str(refdata("llamafactory_data", "mllm_demo_data", f"{n}.jpg")) for n in (1, 2)]
    conversation = Conversation([Message("user", "<image>Compare<image>them."), Message("assistant", "Alike.")],
                                None, "test:row 1", media={"images": images})
    encoder = encoder_for(processor)
    example = encoder.encode(conversation)
    rendered = get_template("chatml").render_text(conversation.messages)
    decoded = decode_media(conversation.media, OPTIONS, conversation.source)
    expected = processor(text=[rendered.replace(PLACEHOLDERS["images"], encoder.plugin.markers["images"])],
                         images=decoded.images, add_special_tokens=False, return_tensors="pt")
    assert example.input_ids == expected["input_ids"][0].tolist()
    assert "<image_id>1</image_id>" in processor.tokenizer.decode(example.input_ids)
    batch = MultimodalCollator(encoder, pad_to_multiple_of=None)([to_row(conversation)])
    torch.testing.assert_close(batch["pixel_values"], expected["pixel_values"])
    torch.testing.assert_close(batch["target_sizes"], expected["target_sizes"])
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_molmo2_rows_start_with_the_bos_its_processor_writes(tiny_vlm):
    """Molmo2's processor writes its BOS before every text: a two-image row is its own ids, a text-only row starts
    with the BOS too (never supervised), and the tensors are its own."""
    from lmforge.data.conversation import Conversation
    from lmforge.data.templates.template import Message
    from tests.refdata import refdata

    processor, model = load_vlm(tiny_vlm("molmo2"), "molmo2")
    images = [str(refdata("llamafactory_data", "mllm_demo_data", f"{n}.jpg")) for n in (1, 2)]
    conversation = Conversation([Message("user", "<image>Compare<image>them."), Message("assistant", "Alike.")],
                                None, "test:row 1", media={"images": images})
    encoder = encoder_for(processor)
    assert encoder.plugin.name == "molmo2"
    example = encoder.encode(conversation)
    rendered = get_template("chatml").render_text(conversation.messages)
    decoded = decode_media(conversation.media, OPTIONS, conversation.source)
    expected = processor(text=[rendered.replace(PLACEHOLDERS["images"], encoder.plugin.markers["images"])],
                         images=decoded.images, add_special_tokens=False, return_tensors="pt")
    assert example.input_ids == expected["input_ids"][0].tolist()
    assert example.input_ids[0] == processor.tokenizer.bos_token_id and example.labels[0] == -100
    text_only = encoder.encode(TEXT_ONLY)
    assert text_only.input_ids[0] == processor.tokenizer.bos_token_id and text_only.input_ids.count(
        processor.tokenizer.bos_token_id) == 1
    batch = MultimodalCollator(encoder, pad_to_multiple_of=None)([to_row(conversation)])
    for key in ("pixel_values", "image_token_pooling", "image_grids", "image_num_crops"):
        torch.testing.assert_close(batch[key], expected[key].to(batch[key].dtype), msg=key)
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)
