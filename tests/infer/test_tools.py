"""Tool calling in the engine: definitions rendered as training renders them, answers parsed into calls.

A tiny random model never writes a tool call by itself, so the end-to-end tests force its answer
token by token with a real `LogitsProcessor` handed to transformers' own `generate`.
"""

import functools

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from lmforge.config import build_config
from lmforge.data.templates import get_template
from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.template import Message, ToolCall
from lmforge.data.templates.tool_formats import TOOL_FORMATS, get_tool_format
from lmforge.infer.candidates import Candidate, StreamDelta
from lmforge.infer.factory import create_engine
from lmforge.infer.tools import (
    WHOLE_ANSWER_HOLDS,
    ToolError,
    ToolStream,
    call_start,
    check_tools,
    split_tool_calls,
)

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
CALLS = (ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_weather", {"city": "Oslo"}))
WHOLE_ANSWER_FORMATS = {"llama3", "glm4"}  # their calls are the entire answer: no content beside them
TEXT_WRAPPING_FORMATS = {"llama4", "command_r7b", "gpt_oss"}


@pytest.mark.parametrize("name", sorted(TOOL_FORMATS))
def test_every_tool_format_knows_where_its_calls_start(name):
    fmt = get_tool_format(name)
    answer = fmt.join("Let me look that up.", fmt.render_calls(CALLS))
    if fmt.call_marker:  # the marker opens the calls (after the content, or around it)
        assert fmt.call_marker in answer and call_start(fmt, answer) <= answer.index(fmt.render_calls(CALLS))
    else:  # calls are the whole answer: streaming knows when an answer cannot be one
        assert name in WHOLE_ANSWER_HOLDS


@pytest.mark.parametrize("name", sorted({fmt.name for fmt in TOOL_FORMATS.values()}))
def test_rendered_calls_split_back_into_content_and_calls(name):
    fmt = get_tool_format(name)
    content = "" if name in WHOLE_ANSWER_FORMATS else "Let me look that up."
    text = fmt.join(content, fmt.render_calls(CALLS)) if content else fmt.render_calls(CALLS)
    # formats that wrap the text around their calls (Llama 4, Command R7B's plan, gpt-oss's channels) return the
    # calls only; MiniMax-M2 only puts the calls on a line of their own, so its text comes back
    expected = "" if name in TEXT_WRAPPING_FORMATS else content
    assert split_tool_calls(fmt, text) == (expected, CALLS)
    assert split_tool_calls(fmt, "It is sunny in Paris.") == ("It is sunny in Paris.", ())


def test_a_malformed_call_stays_the_answers_text():
    broken = '<tool_call>\n{"name": "get_weather", "arguments": {oops}\n</tool_call>'
    assert split_tool_calls(get_tool_format("qwen"), broken) == (broken, ())


def test_tool_definitions_are_checked():
    assert check_tools([WEATHER["function"]]) == [WEATHER]  # a bare function is wrapped
    with pytest.raises(ToolError, match=r"needs a non-empty string `function\.name`"):
        check_tools([{"type": "function", "function": {"description": "no name"}}])
    with pytest.raises(ToolError, match="must be unique"):
        check_tools([WEATHER, WEATHER])


def _stream(fmt_name, text, finish="stop"):
    deltas = [StreamDelta(0, char) for char in text] + [StreamDelta(0, "", finish)]
    return list(ToolStream(get_tool_format(fmt_name)).feed(iter(deltas)))


def test_stream_sends_content_early_and_the_calls_at_the_end():
    fmt = get_tool_format("qwen")
    text = "Checking.\n" + fmt.render_calls(CALLS)
    out = _stream("qwen", text)
    assert "".join(d.text for d in out) == "Checking."
    assert out[0].text == "C"  # content is not held back
    assert [d.finish_reason for d in out[:-1]] == [None] * (len(out) - 1)
    assert out[-1].finish_reason == "tool_calls" and out[-1].tool_calls == CALLS


@pytest.mark.parametrize("name", ["qwen", "llama3", "glm4", "mistral", "default", "xml"])
def test_stream_of_a_plain_answer_is_the_whole_text(name):
    text = "It is sunny in Paris, 21 degrees.\nEnjoy the day."
    out = _stream(name, text, finish="length")
    assert "".join(d.text for d in out) == text
    assert out[-1].finish_reason == "length" and out[-1].tool_calls == ()
    assert sum(1 for d in out if d.text) > 1  # released before the end, once clearly not a call


def test_stream_holds_a_whole_answer_call_until_it_ends():
    fmt = get_tool_format("llama3")
    out = _stream("llama3", fmt.render_calls(CALLS[:1]))
    assert [d.text for d in out] == [""] and out[0].tool_calls == CALLS[:1]


class ForceAnswer(LogitsProcessor):
    """Makes generation write `ids` and then `eos`: a real generate call with a known answer."""

    def __init__(self, ids, eos):
        self.ids, self.eos, self.start = [*ids, eos], eos, None

    def __call__(self, input_ids, scores):
        self.start = input_ids.shape[1] if self.start is None else self.start
        step = input_ids.shape[1] - self.start
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.ids[min(step, len(self.ids) - 1)]] = 0.0
        return forced


@pytest.fixture(scope="module")
def engine():
    cfg = build_config({"model_name_or_path": "builtin:tiny-llama", "template": "qwen", "do_sample": False,
                        "max_new_tokens": 160})
    engine = create_engine(cfg)
    yield engine
    engine.close()


def force(monkeypatch, engine, text):
    ids = engine.tokenizer.encode(text, add_special_tokens=False)
    assert engine.tokenizer.decode(ids) == text
    generate = type(engine.model).generate.__get__(engine.model)  # the unforced one, even when forced before
    monkeypatch.setattr(engine.model, "generate", functools.partial(
        lambda **kw: generate(**kw, logits_processor=LogitsProcessorList([ForceAnswer(ids, engine.eos_token_ids[0])]))))


def test_prompt_renders_tools_and_tool_turns_as_training_does(engine):
    history = [Message("user", "Weather in Paris?"), Message("assistant", "", CALLS[:1]),
               Message("tool", '{"temperature": 21}')]
    ids = engine.encode(history, tools=[WEATHER])
    template = get_template("qwen")
    expected = encode_conversation(template, engine.tokenizer, history, system=None, tools=[WEATHER],
                                   add_generation_prompt=True).flat()
    assert ids == expected
    text = engine.tokenizer.decode(ids)
    assert "<tools>\n" + '{"type": "function", "function": {"name": "get_weather"' in text
    assert template.tools.render_calls(CALLS[:1]) in text
    assert '<tool_response>\n{"temperature": 21}\n</tool_response>' in text


def test_forced_tool_call_comes_back_parsed(engine, monkeypatch):
    answer = "Let me check.\n" + engine.template.tools.render_calls(CALLS[:1])
    force(monkeypatch, engine, answer)
    [candidate] = engine.candidates([Message("user", "Weather in Paris?")], tools=[WEATHER])
    assert isinstance(candidate, Candidate) and candidate.text == answer
    assert candidate.tool_calls == CALLS[:1] and candidate.content == "Let me check."
    assert candidate.finish_reason == "tool_calls"
    assert candidate.as_message() == Message("assistant", "Let me check.", CALLS[:1])
    deltas = list(engine.stream_candidates([Message("user", "Weather in Paris?")], tools=[WEATHER]))
    assert "".join(d.text for d in deltas) == "Let me check."
    assert deltas[-1].tool_calls == CALLS[:1] and deltas[-1].finish_reason == "tool_calls"


def test_without_tools_the_same_answer_is_plain_text(engine, monkeypatch):
    answer = engine.template.tools.render_calls(CALLS[:1])
    force(monkeypatch, engine, answer)
    [candidate] = engine.candidates([Message("user", "Weather in Paris?")])
    assert candidate.text == answer and candidate.tool_calls == () and candidate.finish_reason == "stop"


def test_an_answer_cut_off_keeps_finish_reason_length():
    fmt = get_tool_format("qwen")
    cut = fmt.render_calls(CALLS)[:-20]
    out = _stream("qwen", cut, finish="length")
    assert out[-1].tool_calls == CALLS[:1] and out[-1].finish_reason == "length"


@pytest.mark.slow
def test_deepseek_calls_written_in_special_tokens_come_back_parsed(tmp_path, tiny_llama_path, monkeypatch):
    """A checkpoint whose tokenizer holds DeepSeek's tool tokens as special tokens (as DeepSeek's does): the
    engine keeps them in the decoded answer, so the forced answer's calls parse."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    fmt = get_tool_format("deepseek3.1")
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_path)
    tokenizer.add_special_tokens({"additional_special_tokens": [*fmt.markers, "<｜User｜>", "<｜Assistant｜>",
                                                                "<｜end▁of▁sentence｜>"]},
                                 replace_extra_special_tokens=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_path)
    model.resize_token_embeddings(len(tokenizer))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    engine = create_engine(build_config({"model_name_or_path": str(tmp_path), "template": "deepseek3.1",
                                         "do_sample": False, "max_new_tokens": 120}))
    try:
        answer = "Checking." + fmt.render_calls(CALLS)
        assert len(engine.kept_special_ids) == len(fmt.markers)
        force(monkeypatch, engine, answer)
        [candidate] = engine.candidates([Message("user", "Weather in Paris and Oslo?")], tools=[WEATHER])
        assert candidate.content == "Checking." and candidate.tool_calls == CALLS
        assert candidate.finish_reason == "tool_calls"
    finally:
        engine.close()
