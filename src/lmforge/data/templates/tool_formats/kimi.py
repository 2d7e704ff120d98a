"""Moonshot Kimi-K2: calls in a `<|tool_calls_section_begin|>` section, each `<|tool_call_begin|>ID
<|tool_call_argument_begin|>{json}<|tool_call_end|>`, where the id names the function: `functions.NAME:INDEX`
(INDEX counts calls across the conversation; the model writes it, so it is trained). Definitions are a JSON
list (the template puts them in a `tool_declare` turn); results name the call id they answer.

Templates of this format give every call its id (`call_ids = "kimi"`); a call rendered without one (or with an id
of another form) is written by its bare name, which parses back as that name without an id.
"""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps, json_arguments
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, q, set_tools
from lmforge.errors import TemplateError

_SECTION_OPEN, _SECTION_CLOSE = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
_CALL_OPEN, _ARGUMENTS, _CALL_CLOSE = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"


_CALL_ID = re.compile(r"functions\.(.+):(\d+)")


def _written_id(call: ToolCall) -> str:
    match = _CALL_ID.fullmatch(call.id)
    return call.id if match and match.group(1) == call.name else call.name


# the same in jinja (`call_id`: the call's id, `call`: the function, `args`: its arguments as JSON)
_JINJA_CALL = (q(_CALL_OPEN) + " + (call_id if call_id and call_id.startswith('functions.' + call.name + ':') and "
               "call_id.split(':')[-1].isdigit() else call.name) + " + q(_ARGUMENTS) + " + args + " + q(_CALL_CLOSE))


# the same in Go: the id where it starts with `functions.NAME:` (`and` stops before `slice` when the id is shorter)
_GO_CALL = (_CALL_OPEN + '{{ $prefix := printf "functions.%s:" .Function.Name }}'
            "{{ if and (gt (len .ID) (len $prefix)) (eq (slice .ID 0 (len $prefix)) $prefix) }}{{ .ID }}"
            "{{ else }}" + go.NAME + "{{ end }}" + _ARGUMENTS + go.ARGUMENTS + _CALL_CLOSE)


def _calls(calls: tuple[ToolCall, ...]) -> str:
    written = "".join(f"{_CALL_OPEN}{_written_id(call)}{_ARGUMENTS}{call.arguments_json()}{_CALL_CLOSE}"
                      for call in calls)
    return f"{_SECTION_OPEN}{written}{_SECTION_CLOSE}"


_CALL = re.compile(re.escape(_CALL_OPEN) + r"\s*(.*?)\s*" + re.escape(_ARGUMENTS) + r"(.*?)(?:"
                   + re.escape(_CALL_CLOSE) + r"|\Z)", re.DOTALL)


def _parse(text: str) -> list[ToolCall]:
    if _SECTION_OPEN not in text:
        return []
    calls = []
    for call_id, arguments in _CALL.findall(text.split(_SECTION_OPEN, 1)[1]):
        if not call_id:
            raise TemplateError(f"a Kimi tool call needs an id `functions.NAME:INDEX` (or a name), got {arguments!r}")
        match = _CALL_ID.fullmatch(call_id)
        name = match.group(1) if match else call_id
        calls.append(ToolCall(name, json_arguments(arguments.strip(), name), id=call_id if match else ""))
    return calls


def _tools(tools: Tools) -> str:
    return dumps(tools)


register_tool_format(ToolFormat(
    "kimi_k2", _tools, _calls, _parse, content_separator="", call_ids="kimi", call_marker=_SECTION_OPEN,
    call_words=(_SECTION_CLOSE, _CALL_OPEN, _ARGUMENTS, _CALL_CLOSE),
    jinja=JinjaToolFormat(set_tools("ns.tool_list | tojson"), _JINJA_CALL, "", q(_SECTION_OPEN), q(_SECTION_CLOSE)),
    ollama=OllamaToolFormat(
        "{{ json $.Tools }}", _GO_CALL, prefix=_SECTION_OPEN, suffix=_SECTION_CLOSE,
        limits=go.CALL_IDS + "; an id `functions.NAME:X` is written as it is even where X is not a number (Go's "
                             "templates cannot test for digits), where lmforge writes the bare name"),
    description="Kimi-K2: calls `<|tool_call_begin|>functions.NAME:INDEX<|tool_call_argument_begin|>{...}` in a "
                "`<|tool_calls_section_begin|>` section; tools as a JSON list"))
