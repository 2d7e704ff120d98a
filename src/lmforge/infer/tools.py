"""Tool calling at inference: checked tool definitions, and answers split into content and tool calls.

The template's tool format renders the definitions into the prompt and parses calls back, exactly as
training writes them (`lmforge.data.templates.tool_formats`). This module adds where the calls start
in an answer, so the text before them is the answer's content, and `ToolStream` can stream content as
it is generated while holding back only what may still turn out to be a call.
"""

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from lmforge.data.templates.messages import ToolCall, normalize_tools
from lmforge.data.templates.tool_formats import ToolFormat
from lmforge.errors import TemplateError
from lmforge.infer.candidates import Candidate, StreamDelta
from lmforge.infer.stops import held_back


class ToolError(TemplateError):
    """Tool definitions, a tool call or a tool choice in a request are malformed."""


def check_tools(tools: Sequence[Any] | None) -> list[dict[str, Any]] | None:
    """Tool definitions in OpenAI's function shape (bare functions are wrapped), each with a string name."""
    if not tools:
        return None
    if not isinstance(tools, list | tuple) or not all(isinstance(tool, dict) for tool in tools):
        raise ToolError("tools must be a list of objects like "
                        '{"type": "function", "function": {"name": ..., "parameters": {...}}}')
    normalized = normalize_tools(list(tools)) or []
    for number, tool in enumerate(normalized, start=1):
        function = tool["function"]
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise ToolError(f"tool {number} needs a non-empty string `function.name`, got {json.dumps(tool)[:160]}")
        if not isinstance(function.get("parameters", {}), dict):
            raise ToolError(f"tool `{function['name']}`: `parameters` must be a JSON schema object")
    names = [tool["function"]["name"] for tool in normalized]
    if len(set(names)) != len(names):
        raise ToolError(f"tool names must be unique, got {', '.join(names)}")
    return normalized


def _hold_marker(marker: str) -> Callable[[str], int]:
    """Content is safe up to the marker, or up to a trailing piece that may become the marker."""
    return lambda text: at if (at := text.find(marker)) >= 0 else len(text) - held_back(text, [marker])


def _hold_json_answer(text: str) -> int:
    """Llama 3: an answer that opens with `{` or `[` may be a call; anything else is content."""
    stripped = text.lstrip()
    return 0 if not stripped or stripped[0] in "{[" else len(text)


def _hold_glm4(text: str) -> int:
    """GLM-4: a call is a bare name line followed by a line opening with `{`."""
    name, newline, rest = text.lstrip().partition("\n")
    if len(name.split()) > 1:
        return len(text)  # a first line with spaces is no function name
    if not newline or not rest.strip() or rest.lstrip().startswith("{"):
        return 0
    return len(text)


def _hold_harmony(_text: str) -> int:
    """gpt-oss (Harmony): an analysis message may precede a call, so nothing is certainly content until the
    answer ends (the text beside Harmony calls is the model's analysis, not content)."""
    return 0


# Formats whose calls are the whole answer (no `call_marker`): how much of a partial answer is
# certainly content. Any other such format holds everything back until the answer ends.
WHOLE_ANSWER_HOLDS: dict[str, Callable[[str], int]] = {"llama3": _hold_json_answer, "glm4": _hold_glm4,
                                                       "gpt_oss": _hold_harmony}


def call_start(fmt: ToolFormat, text: str) -> int:
    """Where an answer's calls begin: its format's `call_marker`, or 0 when the calls are the answer."""
    return max(text.find(fmt.call_marker), 0) if fmt.call_marker else 0


def content_safe(fmt: ToolFormat) -> Callable[[str], int]:
    """How much of a partial answer is certainly content (the rest is held back while streaming)."""
    if fmt.call_marker:
        return _hold_marker(fmt.call_marker)
    return WHOLE_ANSWER_HOLDS.get(fmt.name, lambda _text: 0)


def split_tool_calls(fmt: ToolFormat, text: str) -> tuple[str, tuple[ToolCall, ...]]:
    """(content, calls) of an answer. An answer whose calls do not parse (malformed JSON) stays content."""
    try:
        calls = fmt.parse_calls(text)
    except TemplateError:
        return text, ()
    if not calls:
        return text, ()
    return text[:call_start(fmt, text)].rstrip(), tuple(calls)


def with_tool_calls(fmt: ToolFormat, candidate: Candidate) -> Candidate:
    """The candidate with its tool calls parsed out (finish_reason `tool_calls` when it has any)."""
    content, calls = split_tool_calls(fmt, candidate.text)
    if not calls:
        return candidate
    return replace(candidate, content=content, tool_calls=calls, finish_reason=_finish(candidate.finish_reason))


def _finish(reason: Any) -> Any:
    """`tool_calls` for an answer that ended by itself; one cut off by max_new_tokens stays `length`."""
    return "tool_calls" if reason == "stop" else reason


class ToolStream:
    """Streams each candidate's content while holding back text that may be (the start of) a tool call.

    A candidate's held text is released as soon as it cannot be a call; otherwise it is kept until
    the candidate finishes and is then parsed: its calls come as one delta with `tool_calls`.
    """

    def __init__(self, fmt: ToolFormat) -> None:
        self.fmt = fmt
        self.safe = content_safe(fmt)
        self.texts: dict[int, str] = {}
        self.sent: dict[int, int] = {}

    def feed(self, deltas: Iterator[StreamDelta]) -> Iterator[StreamDelta]:
        for delta in deltas:
            text = self.texts[delta.index] = self.texts.get(delta.index, "") + delta.text
            sent = self.sent.get(delta.index, 0)
            if delta.finish_reason is None:
                # trailing whitespace waits too: it is dropped when calls follow it
                upto = len(text[:self.safe(text)].rstrip())
                if upto > sent:
                    self.sent[delta.index] = upto
                    yield StreamDelta(delta.index, text[sent:upto])
                continue
            content, calls = split_tool_calls(self.fmt, text)
            if calls and content.startswith(text[:sent]):  # (what was sent as content stays content)
                yield StreamDelta(delta.index, content[sent:], _finish(delta.finish_reason), tool_calls=calls,
                                  candidate=delta.candidate)
            else:
                yield StreamDelta(delta.index, text[sent:], delta.finish_reason, candidate=delta.candidate)
