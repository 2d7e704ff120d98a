"""A multimodal row trains what its text row would: tool calls and definitions, `weight: 0` answers, the
end-of-turn a template appends in training (`efficient_eos`), and no answer silently left out."""

import json

import pytest
from transformers import AutoProcessor

from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.examples import MMEncoder, from_row, to_row
from lmforge.data.multimodal.media import MediaError, MediaOptions
from lmforge.data.multimodal.plugin import mm_plugin_for
from lmforge.data.multimodal.rows import mm_conversation_converter
from lmforge.data.registry import resolve_dataset
from lmforge.data.templates import get_template
from lmforge.data.templates.auto import resolve_template
from lmforge.data.templates.template import Message, ToolCall
from tests.data.test_templates_auto import auto_tokenizer
from tests.multimodal.conftest import demo_conversations
from tests.refdata import refdata

OPTIONS = MediaOptions(image_max_pixels=64 * 64)
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def supervised_text(tokenizer, example):
    return tokenizer.decode([t for t, label in zip(example.input_ids, example.labels, strict=True)
                             if label != IGNORE_INDEX])


def with_tools_and_weights(image_row: Conversation) -> Conversation:
    question, answer = image_row.messages[:2]
    messages = [question, Message("assistant", "Not telling.", trained=False), Message("user", "Weather there?"),
                Message("assistant", "", (ToolCall("get_weather", {"city": "Paris"}, "call_1"),)),
                Message("tool", '{"temp": 21}', tool_call_id="call_1"), answer]
    return Conversation(messages, None, image_row.source, tools=[WEATHER],
                        media={"images": image_row.media["images"][:1]})


def test_calls_definitions_and_weights_survive_the_row_and_train_as_text_rows_do(tiny_vlm):
    processor = AutoProcessor.from_pretrained(tiny_vlm("qwen2_vl"))
    [image_row] = demo_conversations("mllm_demo.json", "images", 1)
    conversation = with_tools_and_weights(image_row)
    assert from_row(to_row(conversation)) == conversation
    encoder = MMEncoder(processor, mm_plugin_for(processor), get_template("qwen3_vl_nothink"), OPTIONS, 4096)
    example = encoder.encode(from_row(to_row(conversation)))
    text = processor.tokenizer.decode(example.input_ids)
    trained = supervised_text(processor.tokenizer, example)
    assert "get_weather" in text.split("<|im_start|>user")[0]  # the definitions, in the system turn
    assert "Not telling." in text and "Not telling." not in trained
    assert '{"name": "get_weather", "arguments": {"city": "Paris"}}' in trained
    assert trained.endswith(f"{image_row.messages[1].content}<|im_end|>")


def test_a_template_that_appends_eos_in_training_does_so_for_media_rows(tiny_vlm):
    processor = AutoProcessor.from_pretrained(tiny_vlm("glm4v"))
    [image_row] = demo_conversations("mllm_demo.json", "images", 1)
    template = get_template("glm4v")
    assert template.efficient_eos
    encoder = MMEncoder(processor, mm_plugin_for(processor), template, OPTIONS, 4096)
    example = encoder.encode(image_row)
    answer = [t for t, label in zip(example.input_ids, example.labels, strict=True) if label != IGNORE_INDEX]
    assert answer[-1] == processor.tokenizer.eos_token_id  # the model learns to stop


def test_a_conversation_the_template_splits_is_refused_not_cut_to_its_last_answer(tiny_vlm):
    processor = AutoProcessor.from_pretrained(tiny_vlm("qwen2_vl"))
    template = resolve_template(None, auto_tokenizer("qwen3"))  # drops earlier thoughts
    [image_row] = demo_conversations("mllm_demo.json", "images", 1)
    question, answer = image_row.messages[:2]
    thinking = Conversation([question, Message("assistant", "<think>\nA cat.\n</think>\n\n" + answer.content),
                             Message("user", "Sure?"), Message("assistant", "<think>\nYes.\n</think>\n\nYes.")],
                            None, image_row.source, media={"images": image_row.media["images"][:1]})
    encoder = MMEncoder(processor, mm_plugin_for(processor), template, OPTIONS, 4096)
    with pytest.raises(MediaError, match=r"mllm_demo.json:row 1: .* trains as 2 examples.*`mask_history: true`"):
        encoder.encode(thinking)
    last_only = MMEncoder(processor, mm_plugin_for(processor), template, OPTIONS, 4096, mask_history=True)
    assert supervised_text(processor.tokenizer, last_only.encode(thinking)).startswith("<think>\nYes.")



def test_an_openai_row_with_image_parts_trains_its_image(tiny_vlm, tmp_path):
    processor = AutoProcessor.from_pretrained(tiny_vlm("qwen2_vl"))
    image = refdata("llamafactory_data") / "mllm_demo_data" / "1.jpg"
    row = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": str(image)}},
                                                     {"type": "text", "text": "What is this?"}]},
                        {"role": "assistant", "content": "A photo."}]}
    (tmp_path / "chat.jsonl").write_text(json.dumps(row))
    spec = resolve_dataset(str(tmp_path / "chat.jsonl"), tmp_path)
    conversation = mm_conversation_converter(spec, tmp_path)(row, "chat.jsonl:line 1")
    assert conversation.media == {"images": [str(image)]}
    example = MMEncoder(processor, mm_plugin_for(processor), get_template("qwen2_vl"), OPTIONS, 4096).encode(
        conversation)
    image_token = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert example.input_ids.count(image_token) > 0 and len(example.processed.tensors["images"]) == 1
    assert supervised_text(processor.tokenizer, example) == "A photo.<|im_end|>"
