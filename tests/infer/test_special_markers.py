"""Tool-call markers that are special tokens survive decoding, so real Mistral answers parse into calls."""

from lmforge.data.templates.template import ToolCall
from lmforge.data.templates.tool_formats import get_tool_format
from lmforge.infer.stops import IncrementalDecoder, answer_text, special_markers
from lmforge.infer.tools import split_tool_calls
from tests.data.real_tokenizers import real_tokenizer


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
