"""GLM-4.5 / 4.6 (glm4_moe): `<tool_call>NAME` then one `<arg_key>` / `<arg_value>` pair a line per argument;
GLM-4.7 (glm4_7): the same without the newlines."""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import (
    XML_VALUE_JINJA,
    ToolFormat,
    Tools,
    dumps,
    parse_xml_value,
    xml_value,
)
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, q, set_tools

_HEAD = ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with "
         "function signatures within <tools></tools> XML tags:\n<tools>\n")
_TAIL = ("</tools>\n\nFor each function call, output the function name and arguments within the following XML "
         "format:\n<tool_call>{function-name}\n<arg_key>{arg-key-1}</arg_key>\n<arg_value>{arg-value-1}</arg_value>\n"
         "<arg_key>{arg-key-2}</arg_key>\n<arg_value>{arg-value-2}</arg_value>\n...\n</tool_call>")


_TAIL_47 = _TAIL.replace("}\n<", "}<").replace(">\n<", "><").replace(">\n...\n<", ">...<")


def _tools(tools: Tools) -> str:
    return _HEAD + "".join(dumps(tool) + "\n" for tool in tools) + _TAIL


def _tools_47(tools: Tools) -> str:
    return _HEAD + "".join(dumps(tool) + "\n" for tool in tools) + _TAIL_47


def _call(call: ToolCall, newline: str) -> str:
    return f"<tool_call>{call.name}{newline}" + "".join(
        f"<arg_key>{key}</arg_key>{newline}<arg_value>{xml_value(value)}"
        f"</arg_value>{newline}" for key, value in call.arguments.items()) + "</tool_call>"


def _calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(_call(call, "\n") for call in calls)


def _calls_47(calls: tuple[ToolCall, ...]) -> str:
    return "".join(_call(call, "") for call in calls)


_CALL = re.compile(r"<tool_call>([^\n<]+)\n?(.*?)</tool_call>", re.DOTALL)
_ARGUMENT = re.compile(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", re.DOTALL)


def _parse(text: str) -> list[ToolCall]:
    return [ToolCall(name.strip(), {key: parse_xml_value(raw) for key, raw in _ARGUMENT.findall(body)})
            for name, body in _CALL.findall(text)]


def _jinja_call(newline: str) -> str:
    return (
        f"{{%- set ns.call = '<tool_call>' + call.name + '{newline}' -%}}"
        "{%- for key, value in (call.arguments if call.arguments is mapping else {}).items() -%}"
        f"{{%- set ns.call = ns.call + '<arg_key>' + key + '</arg_key>{newline}<arg_value>' + {XML_VALUE_JINJA} "
        f"+ '</arg_value>{newline}' -%}}{{%- endfor -%}}"
        "{%- set ns.call = ns.call + '</tool_call>' -%}"
    )


def _go_call(newline: str) -> str:
    return (f"<tool_call>{go.NAME}{newline}{{{{ range $key, $value := .Function.Arguments }}}}<arg_key>{{{{ $key }}}}"
            f"</arg_key>{newline}<arg_value>{go.STRING_OR_JSON}</arg_value>{newline}{{{{ end }}}}</tool_call>")


_GO_TOOLS = "{{ range $.Tools }}{{ json . }}\n{{ end }}"
_WORDS = ("</tool_call>", "<arg_key>", "</arg_key>", "<arg_value>", "</arg_value>")

_JINJA_TOOLS = set_tools(q(_HEAD)) + "{%- for tool in ns.tool_list -%}" + append_tools("tool | tojson + '\\n'") + (
    "{%- endfor -%}")

register_tool_format(ToolFormat(
    "glm4_moe", _tools, _calls, _parse, call_marker="<tool_call>", call_words=_WORDS,
    description="GLM-4.5 / 4.6: `<tool_call>NAME` with `<arg_key>` / `<arg_value>` lines; tools in `<tools>`",
    jinja=JinjaToolFormat(_JINJA_TOOLS + append_tools(q(_TAIL)), _jinja_call("\\n"), "\n"),
    ollama=OllamaToolFormat(go.go_text(_HEAD) + _GO_TOOLS + go.go_text(_TAIL), _go_call("\n"), "\n")))
register_tool_format(ToolFormat(
    "glm4_7", _tools_47, _calls_47, _parse, call_marker="<tool_call>", call_words=_WORDS, content_separator="",
    description="GLM-4.7: as glm4_moe without the newlines",
    jinja=JinjaToolFormat(_JINJA_TOOLS + append_tools(q(_TAIL_47)), _jinja_call("")),
    ollama=OllamaToolFormat(go.go_text(_HEAD) + _GO_TOOLS + go.go_text(_TAIL_47), _go_call(""))))
