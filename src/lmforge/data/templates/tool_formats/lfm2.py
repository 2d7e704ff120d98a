"""Liquid AI LFM2 / LFM2.5: pythonic calls `<|tool_call_start|>[name(key='value', n=1)]<|tool_call_end|>`; the
definitions as a JSON list after the system prompt (LFM2 wraps it in `<|tool_list_start|>` tokens).

Values are written as LFM2.5's template writes them: strings in single quotes, objects as JSON, anything else as
Python writes it (`True`, `None`, `[1, 2]`). Unlike that template, a quote, backslash or line break inside a string
is escaped (Python's way), so every call parses back.
"""

import ast
import re
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, set_tools
from lmforge.data.templates.tool_formats.olmo import _literal
from lmforge.errors import TemplateError


def _listed(tools: Tools) -> str:
    return "[" + ", ".join(dumps(tool) for tool in tools) + "]"


def _lfm2_tools(tools: Tools) -> str:
    return f"List of tools: <|tool_list_start|>{_listed(tools)}<|tool_list_end|>"


def _lfm25_tools(tools: Tools) -> str:
    return f"List of tools: {_listed(tools)}"


def _value(value: Any) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        return f"'{escaped}'"
    return dumps(value) if isinstance(value, dict) else str(value)


def _calls(calls: tuple[ToolCall, ...]) -> str:
    listed = ", ".join(f"{call.name}(" + ", ".join(f"{key}={_value(value)}" for key, value in call.arguments.items())
                       + ")" for call in calls)
    return f"<|tool_call_start|>[{listed}]<|tool_call_end|>"


_BLOCK = re.compile(r"<\|tool_call_start\|>(.*?)(?:<\|tool_call_end\|>|\Z)", re.DOTALL)
_CALL_NAME = re.compile(r"(^|[\[,]\s*)([A-Za-z_][\w.-]*)\(")


def _parse(text: str) -> list[ToolCall]:
    match = _BLOCK.search(text)
    if not match:
        return []
    names: list[str] = []

    def placeholder(found: re.Match[str]) -> str:
        names.append(found.group(2))
        return f"{found.group(1)}_lmforge_call_{len(names) - 1}("

    body = match.group(1).strip()
    try:
        listed = ast.parse(_CALL_NAME.sub(placeholder, body), mode="eval").body
    except SyntaxError as err:
        raise TemplateError(f"a <|tool_call_start|> block is not a list of pythonic calls ({err.msg}): "
                            f"{body[:200]}") from None
    calls = []
    for call in listed.elts if isinstance(listed, ast.List) else [listed]:
        if (not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name)
                or not call.func.id.startswith("_lmforge_call_") or call.args):
            raise TemplateError(f"a <|tool_call_start|> block holds `[name(key=value, ...), ...]`, got {body[:200]}")
        name = names[int(call.func.id.removeprefix("_lmforge_call_"))]
        calls.append(ToolCall(name, {keyword.arg: _literal(keyword.value, name)
                                     for keyword in call.keywords if keyword.arg is not None}))
    return calls


_JINJA_CALL = (
    "{%- if call.arguments is string -%}{{- raise_exception('tool call ' + call.name + ': pythonic calls need the "
    "arguments as an object, not a JSON string') -}}{%- endif -%}"
    "{%- set ns.call = call.name + '(' -%}"
    "{%- for key, value in call.arguments.items() -%}"
    "{%- if value is string -%}{%- set shown = \"'\" + (value | replace('\\\\', '\\\\\\\\') "
    "| replace(\"'\", \"\\\\'\") | replace('\\n', '\\\\n') | replace('\\r', '\\\\r')) + \"'\" -%}"
    "{%- elif value is mapping -%}{%- set shown = value | tojson -%}"
    "{%- else -%}{%- set shown = value | string -%}{%- endif -%}"
    "{%- set ns.call = ns.call + (', ' if not loop.first else '') + key + '=' + shown -%}"
    "{%- endfor -%}"
    "{%- set ns.call = ns.call + ')' -%}"
)
_JINJA_LIST = ("{%- for tool in ns.tool_list -%}" + append_tools("(', ' if not loop.first else '') + tool | tojson")
               + "{%- endfor -%}")


# Go: a pythonic call; strings quoted but not escaped, lists as JSON (Ollama's data has no Python repr)
_GO_CALL = (go.NAME + '({{ $sep := "" }}{{ range $key, $value := .Function.Arguments }}{{ $sep }}{{ $sep = ", " }}'
            '{{ $key }}={{ if eq (printf "%T" $value) "string" }}\'{{ $value }}\'{{ else if eq (printf "%T" $value) '
            '"bool" }}{{ if $value }}True{{ else }}False{{ end }}{{ else }}{{ json $value }}{{ end }}{{ end }})')
_GO_LIST = "{{ range $k, $t := $.Tools }}{{ if $k }}, {{ end }}{{ json $t }}{{ end }}"
_GO_LIMITS = ("a quote or line break inside a string argument is not escaped, and a list argument is written as JSON "
              "(lmforge writes Python's repr)")


def _format(name: str, render_tools: Any, head: str, tail: str, description: str) -> ToolFormat:
    return ToolFormat(
        name, render_tools, _calls, _parse, content_separator="", call_marker="<|tool_call_start|>",
        call_words=("<|tool_call_end|>",), description=description,
        jinja=JinjaToolFormat(set_tools(head) + _JINJA_LIST + append_tools(tail), _JINJA_CALL, ", ",
                              "'<|tool_call_start|>['", "']<|tool_call_end|>'"),
        ollama=OllamaToolFormat(go.go_text(head.strip("'")) + _GO_LIST + go.go_text(tail.strip("'")), _GO_CALL, ", ",
                                "<|tool_call_start|>[", "]<|tool_call_end|>", limits=_GO_LIMITS))


register_tool_format(_format("lfm2", _lfm2_tools, "'List of tools: <|tool_list_start|>['", "']<|tool_list_end|>'",
                             "LFM2: pythonic calls in `<|tool_call_start|>[...]`; tools in `<|tool_list_start|>`"))
register_tool_format(_format("lfm2.5", _lfm25_tools, "'List of tools: ['", "']'",
                             "LFM2.5: pythonic calls in `<|tool_call_start|>[...]`; tools as a JSON list"))
