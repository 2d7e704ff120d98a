"""MiniMax-M2: `<minimax:tool_call>` around `<invoke name=...>` calls with one `<parameter name=...>` a line."""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import (
    XML_VALUE_JINJA,
    ToolFormat,
    Tools,
    dumps,
    function_of,
    parse_xml_value,
    xml_value,
)
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, q, set_tools

_HEAD = ("# Tools\nYou may call one or more tools to assist with the user query.\nHere are the tools available in "
         "JSONSchema format:\n\n<tools>\n")
_TAIL = ("</tools>\n\nWhen making tool calls, use XML format to invoke tools and pass parameters:\n\n"
         '<minimax:tool_call>\n<invoke name="tool-name-1">\n<parameter name="param-key-1">param-value-1</parameter>\n'
         '<parameter name="param-key-2">param-value-2</parameter>\n...\n</invoke>\n</minimax:tool_call>')


def _tools(tools: Tools) -> str:
    return _HEAD + "".join(f"<tool>{dumps(function_of(tool))}</tool>\n" for tool in tools) + _TAIL


def _calls(calls: tuple[ToolCall, ...]) -> str:
    invokes = "".join(
        f'<invoke name="{call.name}">\n' + "".join(
            f'<parameter name="{key}">{xml_value(value)}</parameter>\n'
            for key, value in call.arguments.items()) + "</invoke>\n" for call in calls)
    return f"<minimax:tool_call>\n{invokes}</minimax:tool_call>"


_INVOKE = re.compile(r'<invoke name="([^"]+)">(.*?)</invoke>', re.DOTALL)
_PARAMETER = re.compile(r'<parameter name="([^"]+)">(.*?)</parameter>', re.DOTALL)


def _parse(text: str) -> list[ToolCall]:
    return [ToolCall(name, {key: parse_xml_value(raw) for key, raw in _PARAMETER.findall(body)})
            for name, body in _INVOKE.findall(text)]


_JINJA_CALL = (
    "{%- set ns.call = '<invoke name=\"' + call.name + '\">\\n' -%}"
    "{%- for key, value in (call.arguments if call.arguments is mapping else {}).items() -%}"
    "{%- set ns.call = ns.call + '<parameter name=\"' + key + '\">' + " + XML_VALUE_JINJA
    + " + '</parameter>\\n' -%}{%- endfor -%}"
    "{%- set ns.call = ns.call + '</invoke>\\n' -%}"
)

register_tool_format(ToolFormat(
    "minimax2", _tools, _calls, _parse, call_marker="<minimax:tool_call>", call_words=("</minimax:tool_call>",),
    # the calls open on a line of their own, also in an answer without text
    render_answer=lambda text, calls: f"{text}\n{calls}",
    description="MiniMax-M2: `<minimax:tool_call>` with `<invoke name=...>` / `<parameter name=...>` XML",
    jinja=JinjaToolFormat(set_tools(q(_HEAD)) + "{%- for tool in ns.tool_list -%}"
                          + append_tools("'<tool>' + tool.function | tojson + '</tool>\\n'") + "{%- endfor -%}"
                          + append_tools(q(_TAIL)), _JINJA_CALL, prefix="'<minimax:tool_call>\\n'",
                          suffix="'</minimax:tool_call>'", answer="text + '\\n' + calls"),
    ollama=OllamaToolFormat(
        go.go_text(_HEAD) + "{{ range $.Tools }}<tool>{{ json .Function }}</tool>\n{{ end }}" + go.go_text(_TAIL),
        f'<invoke name="{go.NAME}">\n{{{{ range $key, $value := .Function.Arguments }}}}'
        f'<parameter name="{{{{ $key }}}}">{go.STRING_OR_JSON}</parameter>\n{{{{ end }}}}</invoke>\n',
        prefix="<minimax:tool_call>\n", suffix="</minimax:tool_call>", answer=("", "\n"))))
