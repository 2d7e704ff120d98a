"""EXAONE 4: `<tool_call>{"name": ..., "arguments": ...}</tool_call>` calls, one a line; definitions as JSON in
`<tool>` tags after the system prompt (the format Ollama's EXAONE 4 renderer writes)."""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, call_from_json, dumps, loads
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import NAME_ARGS, JinjaToolFormat, append_tools, q, set_tools

_HEAD = ("# Available Tools\nYou can use none, one, or multiple of the following tools by calling them as functions to "
         "help with the user’s query.\nHere are the tools available to you in JSON format within <tool> and </tool> "
         "tags:\n")
_TAIL = ('\nFor each function call you want to make, return a JSON object with function name and arguments within '
         '<tool_call> and </tool_call> tags, like:\n<tool_call>{"name": function_1_name, "arguments": '
         '{argument_1_name: argument_1_value, argument_2_name: argument_2_value}}</tool_call>\n<tool_call>{"name": '
         'function_2_name, "arguments": {...}}</tool_call>\n...\nNote that if no argument name is specified for a '
         "tool, you can just print the argument value directly, without the argument name or JSON formatting.")


def _tools(tools: Tools) -> str:
    return _HEAD + "".join(f"<tool>{dumps(tool)}</tool>\n" for tool in tools) + _TAIL


def _calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(f'<tool_call>{{"name": "{call.name}", "arguments": {call.arguments_json()}}}</tool_call>'
                     for call in calls)


_CALL = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)


def _parse(text: str) -> list[ToolCall]:
    return [call_from_json(loads(block, "a <tool_call> block")) for block in _CALL.findall(text)]


register_tool_format(ToolFormat(
    "exaone4", _tools, _calls, _parse, call_marker="<tool_call>", call_words=("</tool_call>",),
    description="EXAONE 4: `<tool_call>` JSON calls one a line, definitions in `<tool>` tags",
    jinja=JinjaToolFormat(set_tools(q(_HEAD)) + "{%- for tool in ns.tool_list -%}"
                          + append_tools("'<tool>' + tool | tojson + '</tool>\\n'") + "{%- endfor -%}"
                          + append_tools(q(_TAIL)), "'<tool_call>' + " + NAME_ARGS + " + '}</tool_call>'", "\n"),
    ollama=OllamaToolFormat(go.go_text(_HEAD) + "{{ range $.Tools }}<tool>{{ json . }}</tool>\n{{ end }}"
                            + go.go_text(_TAIL), "<tool_call>" + go.NAME_ARGUMENTS + "</tool_call>", "\n")))
