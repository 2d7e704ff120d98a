"""OpenAI's chat fine-tuning rows: calls in the answer, runs of tool results, content parts, `weight: 0`."""

import json

import pytest

from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.loading import load_conversations
from lmforge.data.processors.sft import tokenize_sft
from lmforge.data.registry import resolve_dataset
from lmforge.data.templates import get_template
from lmforge.data.templates.auto import resolve_template
from lmforge.data.templates.messages import Message, ToolCall, assign_tool_call_ids
from lmforge.errors import DataError, TemplateError
from tests.data.test_templates_auto import auto_tokenizer
from tests.refdata import refdata

WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}
TOOL_ROW = {"messages": [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "user", "content": [{"type": "text", "text": "Weather in Paris "}, {"type": "text", "text": "and Rome?"}]},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
        {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome"}}}]},
    {"role": "tool", "tool_call_id": "call_2", "content": "{\"temp\": 25}"},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 21}"},
    {"role": "assistant", "content": "21 C in Paris, 25 C in Rome.", "weight": 1}], "tools": [WEATHER]}
WEIGHTED_ROW = {"messages": [
    {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Go away.", "weight": 0},
    {"role": "user", "content": "Hi again"}, {"role": "assistant", "content": "Hello! How can I help?"}]}


def load_file(tmp_path, rows, on_bad_row="error"):
    path = tmp_path / "chat.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows))
    return load_conversations(resolve_dataset(str(path), tmp_path), max_samples=None, on_bad_row=on_bad_row)


def supervised(tokenizer, ids, labels):
    return tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX])


def test_calls_results_parts_and_tools_of_an_openai_row(tmp_path):
    conversation = load_file(tmp_path, [TOOL_ROW]).conversations[0]
    assert conversation.system == "You are a weather bot." and conversation.tools == [WEATHER]
    user, calls, first, second, answer = conversation.messages
    assert user.content == "Weather in Paris and Rome?"
    assert calls.tool_calls == (ToolCall("get_weather", {"city": "Paris"}, "call_1"),
                                ToolCall("get_weather", {"city": "Rome"}, "call_2")) and calls.content == ""
    assert (first.role, first.tool_call_id, second.tool_call_id) == ("tool", "call_2", "call_1")
    assert answer.trained and [m.trained for m in load_file(tmp_path, [WEIGHTED_ROW]).conversations[0].messages] == [
        True, False, True, True]


def test_a_weight_0_answer_is_context_never_trained(tmp_path, tiny_tokenizer):
    conversation = load_file(tmp_path, [WEIGHTED_ROW]).conversations[0]
    template = get_template("chatml")
    for options in ({}, {"train_on_prompt": True}):
        columns, stats = tokenize_sft([conversation], template, tiny_tokenizer, cutoff_len=512, **options)
        ids, labels = columns["input_ids"][0], columns["labels"][0]
        assert "Go away." in tiny_tokenizer.decode(ids)  # in the context
        assert "Go away." not in supervised(tiny_tokenizer, ids, labels)
        assert "Hello! How can I help?<|im_end|>" in supervised(tiny_tokenizer, ids, labels)
        assert stats.answers == (0 if options else 1)
    # mask_history supervises the last answer only; marked 0, the conversation has nothing to learn: dropped, counted
    last_untrained = Conversation([*conversation.messages[:3], Message("assistant", "Hello!", trained=False)],
                                  None, "chat.jsonl:line 1")
    columns, stats = tokenize_sft([last_untrained], template, tiny_tokenizer, cutoff_len=512, mask_history=True)
    assert columns["input_ids"] == [] and stats.dropped_empty == ["chat.jsonl:line 1"]


def test_weights_under_the_models_own_template(tmp_path):
    tokenizer = auto_tokenizer("qwen2.5-instruct")
    template = resolve_template(None, tokenizer)
    conversations = load_file(tmp_path, [WEIGHTED_ROW, TOOL_ROW]).conversations
    columns, _ = tokenize_sft(conversations, template, tokenizer, cutoff_len=1024)
    weighted = supervised(tokenizer, columns["input_ids"][0], columns["labels"][0])
    assert "Go away." in tokenizer.decode(columns["input_ids"][0]) and "Go away." not in weighted
    assert "Hello! How can I help?" in weighted
    tools = supervised(tokenizer, columns["input_ids"][1], columns["labels"][1])
    assert tools.count("get_weather") == 2 and '"Rome"' in tools and "25 C in Rome." in tools
    assert "get_weather" in tokenizer.decode(columns["input_ids"][1]).split("<|im_start|>user")[0]  # definitions


def test_a_template_that_drops_calls_or_definitions_is_refused_with_the_row(tmp_path):
    tokenizer = auto_tokenizer("smollm2-instruct")  # a ChatML template without tool support
    template = resolve_template(None, tokenizer)
    conversations = load_file(tmp_path, [TOOL_ROW]).conversations
    with pytest.raises(TemplateError, match=r"chat.jsonl:line 1: .*does not write message 3's call of `get_weather`"):
        tokenize_sft(conversations, template, tokenizer, cutoff_len=1024)
    no_calls = Conversation([Message("user", "q"), Message("assistant", "a")], None, "chat.jsonl:line 2",
                            tools=[WEATHER])
    with pytest.raises(TemplateError, match=r"line 2: .*does not write tool definitions \(`get_weather`"):
        tokenize_sft([no_calls], template, tokenizer, cutoff_len=1024)


@pytest.mark.parametrize(("turns", "pattern"), [
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "weight": 0.5}],
     r"line 1: message 2 `weight` must be 0 \(not trained\) or 1 \(trained\), got 0.5"),
    ([{"role": "user", "content": "q", "weight": 0}, {"role": "assistant", "content": "a"}],
     r"message 1 has a `weight`; only assistant messages carry one"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "{city: 1}"}}]}],
     r"message 2 tool call 1 arguments are not valid JSON"),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [{"name": "f"}]}],
     r'message 2 tool call 1 must be \{"type": "function", "function"'),
    ([{"role": "user", "content": "q"}, {"role": "assistant", "content": None}],
     r"message 2 `content` must be a string or a list of parts, got NoneType"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "cat.png"}}]},
      {"role": "assistant", "content": "a cat"}], r"image part file not found: .*cat.png"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.org/cat.png"}}]},
      {"role": "assistant", "content": "a cat"}], r"image 'https://x.org/cat.png' is not a file; lmforge reads media"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklGR", "format": "wav"}}]},
      {"role": "assistant", "content": "hi"}], r"audio 'inline data' is not a file"),
    ([{"role": "user", "content": [{"type": "video", "frames": 3}]}, {"role": "assistant", "content": "a"}],
     r"a video part names no file, and no `videos` column holds it"),
    ([{"role": "user", "content": [{"type": "refusal", "refusal": "no"}]}, {"role": "assistant", "content": "a"}],
     r"message 1 `content` part 1 must be a text part .* or a media part"),
    ([{"role": "user", "content": "q"},
      {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {}}}]},
      {"role": "tool", "tool_call_id": "c9", "content": "r"}, {"role": "assistant", "content": "a"}],
     r"turn 3 answers tool call `c9`, which the answer before it does not make.*unanswered: `c1`"),
    ([{"role": "user", "content": "q"},
      {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": {}}}]},
      {"role": "tool", "content": "r"}, {"role": "tool", "content": "r2"}, {"role": "assistant", "content": "a"}],
     r"wrong role order: turn 4 is `tool`, expected `assistant` .*at most one per call"),
    ([{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}, {"role": "assistant", "content": "a"}],
     r"wrong role order: turn 2 is `tool`, expected `assistant`"),
])
def test_malformed_openai_fields_name_the_row_and_message(tmp_path, turns, pattern):
    with pytest.raises(DataError, match=pattern):
        load_file(tmp_path, [{"messages": turns}])
    loaded = load_file(tmp_path, [{"messages": turns}, WEIGHTED_ROW], on_bad_row="skip")
    assert len(loaded.skipped) == 1 and len(loaded.conversations) == 1


def test_reasoning_content_becomes_the_answers_think_block(tmp_path):
    row = {"messages": [{"role": "user", "content": "2+2?"},
                        {"role": "assistant", "content": "4.", "reasoning_content": " Add them. "}]}
    assert load_file(tmp_path, [row]).conversations[0].messages[1].content == "<think>\nAdd them.\n</think>\n\n4."
    row["messages"][1]["content"] = "<think>x</think>4."
    with pytest.raises(DataError, match=r"message 2 has both `reasoning_content` and a think block"):
        load_file(tmp_path, [row])


def test_a_developer_message_is_the_system_prompt(tmp_path):
    row = {"messages": [{"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Hi"},
                        {"role": "assistant", "content": "Bonjour."}]}
    conversation = load_file(tmp_path, [row]).conversations[0]
    assert conversation.system == "Answer in French." and [m.role for m in conversation.messages] == [
        "user", "assistant"]


def test_media_parts_become_placeholders_with_their_files(tmp_path):
    image = refdata("llamafactory_data") / "mllm_demo_data" / "1.jpg"
    sourced = {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this? "},
                                                         {"type": "image_url", "image_url": {"url": f"file://{image}"}}]},
                            {"role": "assistant", "content": "A photo."}]}
    conversation = load_file(tmp_path, [sourced]).conversations[0]
    assert conversation.messages[0].content == "What is this? <image>"
    assert conversation.media == {"images": [str(image)]}
    trl_style = {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What?"}]},
                              {"role": "assistant", "content": "A photo."}], "images": [str(image)]}
    conversation = load_file(tmp_path, [trl_style]).conversations[0]
    assert conversation.messages[0].content == "<image>What?" and conversation.media == {"images": [str(image)]}
    with pytest.raises(DataError, match=r"gives images both in `images` and in its messages' parts; keep one"):
        load_file(tmp_path, [{**sourced, "images": [str(image)]}])


def test_a_prompt_whose_template_drops_the_tools_is_refused(tmp_path):
    smol = resolve_template(None, auto_tokenizer("smollm2-instruct"))  # no tool support
    question = [Message("user", "Weather in Paris?")]
    with pytest.raises(TemplateError, match=r"does not write tool definitions \(`get_weather`"):
        smol.render(question, tools=[WEATHER], add_generation_prompt=True)
    qwen = resolve_template(None, auto_tokenizer("qwen2.5-instruct"))
    assert "get_weather" in qwen.render(question, tools=[WEATHER], add_generation_prompt=True)[0].text


def test_call_ids_of_openais_shape_become_nine_characters_for_mistrals_templates(tmp_path):
    """Mistral's templates raise on an id that is not 9 letters and digits; OpenAI's ids (`call_...`) are replaced
    on the call and on its result alike; a 9-character id is kept; other templates write the ids as given."""
    row = json.loads(json.dumps(TOOL_ROW))
    row["messages"][2]["tool_calls"][0]["id"] = "call_Zx81lKmB3Y8vq0WnQeTt2Rd9"
    row["messages"][4]["tool_call_id"] = "call_Zx81lKmB3Y8vq0WnQeTt2Rd9"
    row["messages"][2]["tool_calls"][1]["id"] = row["messages"][3]["tool_call_id"] = "abcDEF789"
    conversation = load_file(tmp_path, [row]).conversations[0]
    for name in ("mistral-v3", "mistral-v7-tekken", "mistral-common-v7"):
        tokenizer = auto_tokenizer(name)
        template = resolve_template(None, tokenizer)
        assert template.call_id_style == "alnum9"
        columns, _ = tokenize_sft([conversation], template, tokenizer, cutoff_len=4096)
        texts = [tokenizer.decode(ids) for ids in columns["input_ids"]]  # Mistral v3's: one example per answer
        text = texts[-1]  # the whole conversation
        assert not any("call_Zx81" in t for t in texts) and text.count("abcDEF789") == 2, name
        (new_id,) = {call.id for call in template._messages(conversation.messages, None, None)[1].tool_calls} - {
            "abcDEF789"}
        assert len(new_id) == 9 and new_id.isalnum() and text.count(new_id) == 2, name
    qwen = resolve_template(None, auto_tokenizer("qwen2.5-instruct"))
    assert qwen.call_id_style == "given"
    assert qwen._messages(conversation.messages, None, None)[1].tool_calls[0].id == "call_Zx81lKmB3Y8vq0WnQeTt2Rd9"


def test_replaced_call_ids_are_distinct_and_the_same_every_time():
    calls = Message("assistant", "", (ToolCall("f", {}, "call_1"), ToolCall("f", {}, "call_2"),
                                      ToolCall("g", {}, "")))
    messages = [Message("user", "q"), calls, Message("tool", "1", tool_call_id="call_2"),
                Message("tool", "2", tool_call_id="call_1"), Message("tool", "3")]
    first = assign_tool_call_ids(messages)
    assert first == assign_tool_call_ids(messages)  # preprocessing stays reproducible and cacheable
    ids = [call.id for call in first[1].tool_calls]
    assert len(set(ids)) == 3 and all(len(i) == 9 and i.isalnum() for i in ids)
    assert [m.tool_call_id for m in first[2:]] == [ids[1], ids[0], ids[2]]
    assert assign_tool_call_ids(messages, "given")[1].tool_calls[:2] == calls.tool_calls[:2]
    assert [call.id for call in assign_tool_call_ids(messages, "index")[1].tool_calls] == ["call_1", "call_2", "2"]
