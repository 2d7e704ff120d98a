"""Tool-call markers that are special tokens survive decoding, so real Mistral answers parse into calls."""

import pytest

from lmforge.data.templates.template import ToolCall
from lmforge.data.templates.tool_formats import get_tool_format
from lmforge.infer.stops import IncrementalDecoder, answer_text, special_markers
from lmforge.infer.tools import split_tool_calls
from lmforge.infer.vllm_backend import kept_marker_text
from lmforge.testing.tiny import family_tokenizer
from tests.data.real_tokenizers import real_tokenizer

CALLS = (ToolCall("get_weather", {"city": "Paris"}, "a1B2c3D4e"), ToolCall("get_time", {"city": "Oslo"}, "f5G6h7I8j"))


def test_mistral_tool_calls_marker_is_kept_and_parsed(tmp_path_factory):
    tokenizer = real_tokenizer("mistral_v3", tmp_path_factory.getbasetemp() / "real-tokenizers")
    fmt = get_tool_format("mistral")
    keep = special_markers(tokenizer, [fmt.call_marker])
    assert len(keep) == 1  # [TOOL_CALLS] is one control token, dropped by skip_special_tokens
    answer = fmt.render_calls((ToolCall("get_weather", {"city": "Paris"}),))
    ids = tokenizer.encode(answer, add_special_tokens=False)
    assert fmt.call_marker not in tokenizer.decode(ids, skip_special_tokens=True)
    text = answer_text(tokenizer, ids, keep)
    assert split_tool_calls(fmt, text)[1][0].name == "get_weather"
    decoder = IncrementalDecoder(tokenizer, [], keep)
    for token in ids:
        decoder.push(token)
    assert decoder.text == text


def test_text_markers_need_no_keeping(tiny_tokenizer):
    assert special_markers(tiny_tokenizer, ["<tool_call>", "Action:", ""]) == frozenset()


@pytest.mark.parametrize("name", ["deepseek3", "deepseek3.1", "mistral_small", "olmo3"])
def test_every_marker_of_a_format_is_kept_when_it_is_a_special_token(name):
    """Formats whose calls are written with several marker tokens (DeepSeek's five) need all of them kept."""
    fmt = get_tool_format(name)
    tokenizer = family_tokenizer(list(fmt.markers), "<s>", "</s>")
    keep = special_markers(tokenizer, fmt.markers)
    assert len(keep) == len(fmt.markers)
    answer = fmt.join("Checking.", fmt.render_calls(CALLS))
    ids = tokenizer.encode(answer, add_special_tokens=False)
    calls = tuple(fmt.parse_calls(answer))  # (ids only where the format writes them)
    assert [call.name for call in calls] == ["get_weather", "get_time"]
    assert fmt.parse_calls(tokenizer.decode(ids, skip_special_tokens=True)) != list(calls)  # what dropping does
    assert split_tool_calls(fmt, answer_text(tokenizer, ids, keep)) == ("Checking.", calls)
    # the vLLM backend's text keeps them the same way (vLLM decodes without special tokens)
    dropped = tokenizer.decode(ids, skip_special_tokens=True)
    assert kept_marker_text(tokenizer, dropped, ids, keep) == answer_text(tokenizer, ids, keep)
    assert kept_marker_text(tokenizer, "plain", tokenizer.encode("plain", add_special_tokens=False), keep) == "plain"
