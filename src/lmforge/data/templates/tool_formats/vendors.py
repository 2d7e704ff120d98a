"""InternLM2's plugin blocks, NVIDIA Nemotron's `<TOOLCALL>` lists and Granite's `<|tool_call|>` lists."""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import (
    ToolFormat,
    Tools,
    call_from_json,
    dumps,
    function_of,
    json_calls,
    loads,
)
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import (
    NAME_ARGS,
    JinjaToolFormat,
    append_tools,
    each_function,
    q,
    set_tools,
)

# -- internlm2: `<|action_start|><|plugin|>` blocks; tools in a `system name=<|plugin|>` turn ------------


def _internlm2_tools(tools: Tools) -> str:
    return "[" + ", ".join(dumps(tool) for tool in map(function_of, tools)) + "]"


def _internlm2_calls(calls: tuple[ToolCall, ...]) -> str:
    return "".join(f'<|action_start|><|plugin|>\n{{"name": "{call.name}", "arguments": {call.arguments_json()}}}'
                   "<|action_end|>" for call in calls)


_ACTION = re.compile(r"<\|action_start\|><\|plugin\|>\s*(.*?)\s*<\|action_end\|>", re.DOTALL)


def _internlm2_parse(text: str) -> list[ToolCall]:
    return [call_from_json(loads(block, "an <|action_start|> block")) for block in _ACTION.findall(text)]


# -- nemotron: `<TOOLCALL>[...]</TOOLCALL>` JSON lists; tools in `<AVAILABLE_TOOLS>` -----------------------

def _nemotron_tools(tools: Tools) -> str:
    listed = ", ".join(dumps(tool) for tool in map(function_of, tools))
    return ("You can use the following tools to assist the user if required:\n<AVAILABLE_TOOLS>["
            f"{listed}]</AVAILABLE_TOOLS>\n\nIf you decide to call any tool(s), use the following format:\n"
            '<TOOLCALL>[{{"name": "tool_name1", "arguments": "tool_args1"}}, {{"name": "tool_name2", "arguments": '
            '"tool_args2"}}]</TOOLCALL>\n\nThe user will execute tool-calls and return responses from tool(s) in this '
            'format:\n<TOOL_RESPONSE>[{{"tool_response1"}}, {{"tool_response2"}}]</TOOL_RESPONSE>\n\nBased on the '
            "tool responses, you can call additional tools if needed, correct tool calls if any errors are found, or "
            "just respond to the user.")


def _nemotron_calls(calls: tuple[ToolCall, ...]) -> str:
    listed = ", ".join(f'{{"name": "{call.name}", "arguments": {call.arguments_json()}}}' for call in calls)
    return f"<TOOLCALL>[{listed}]</TOOLCALL>"


_TOOLCALL = re.compile(r"<TOOLCALL>(.*?)</TOOLCALL>", re.DOTALL)


def _nemotron_parse(text: str) -> list[ToolCall]:
    return [call for block in _TOOLCALL.findall(text) for call in json_calls(block, "arguments")]


# -- granite: definitions as an indented JSON list, calls as `<|tool_call|>` and a JSON list ----------------

def _granite_tools(tools: Tools) -> str:
    return dumps(tools, indent=4)


def _granite_calls(calls: tuple[ToolCall, ...]) -> str:
    return "<|tool_call|>" + dumps([{"name": call.name, "arguments": call.arguments} for call in calls])


def _granite_parse(text: str) -> list[ToolCall]:
    if "<|tool_call|>" not in text:
        return []
    return json_calls(text.split("<|tool_call|>", 1)[1], "arguments")


_NEMOTRON_INTRO = "You can use the following tools to assist the user if required:\n<AVAILABLE_TOOLS>["
_NEMOTRON_RULES = (
    ']</AVAILABLE_TOOLS>\n\nIf you decide to call any tool(s), use the following format:\n<TOOLCALL>['
    '{{"name": "tool_name1", "arguments": "tool_args1"}}, {{"name": "tool_name2", "arguments": '
    '"tool_args2"}}]</TOOLCALL>\n\nThe user will execute tool-calls and return responses from tool(s) in '
    'this format:\n<TOOL_RESPONSE>[{{"tool_response1"}}, {{"tool_response2"}}]</TOOL_RESPONSE>\n\nBased '
    "on the tool responses, you can call additional tools if needed, correct tool calls if any errors are "
    "found, or just respond to the user.")

register_tool_format(ToolFormat(
    "internlm2", _internlm2_tools, _internlm2_calls, _internlm2_parse,
    call_marker="<|action_start|>", call_words=("<|plugin|>", "<|action_end|>"), content_separator="",
    description="InternLM2: `<|action_start|><|plugin|>` JSON calls, tools in a plugin system turn",
    jinja=JinjaToolFormat(set_tools("'['") + each_function("fn | tojson", ", ") + append_tools("']'"),
                          "'<|action_start|><|plugin|>\\n' + " + NAME_ARGS + " + '}<|action_end|>'"),
    ollama=OllamaToolFormat("[" + go.EACH_FUNCTION + "]",
                            "<|action_start|><|plugin|>\n" + go.NAME_ARGUMENTS + "<|action_end|>")))
register_tool_format(ToolFormat(
    "nemotron", _nemotron_tools, _nemotron_calls, _nemotron_parse, call_marker="<TOOLCALL>",
    call_words=("</TOOLCALL>",),
    description="NVIDIA Nemotron Nano 2: `<TOOLCALL>[...]</TOOLCALL>`, tools in `<AVAILABLE_TOOLS>`",
    jinja=JinjaToolFormat(
        set_tools(q(_NEMOTRON_INTRO)) + each_function("fn | tojson", ", ") + append_tools(q(_NEMOTRON_RULES)),
        NAME_ARGS + " + '}'", ", ", "'<TOOLCALL>['", "']</TOOLCALL>'"),
    ollama=OllamaToolFormat(go.go_text(_NEMOTRON_INTRO) + go.EACH_FUNCTION + go.go_text(_NEMOTRON_RULES),
                            go.NAME_ARGUMENTS, ", ", "<TOOLCALL>[", "]</TOOLCALL>")))
register_tool_format(ToolFormat(
    "granite", _granite_tools, _granite_calls, _granite_parse, call_marker="<|tool_call|>",
    description="Granite 3: `<|tool_call|>` and a JSON list; tools in an `available_tools` turn",
    jinja=JinjaToolFormat(set_tools("ns.tool_list | tojson(indent=4)"), NAME_ARGS + " + '}'", ", ",
                          "'<|tool_call|>['", "']'"),
    ollama=OllamaToolFormat("{{ json $.Tools }}", go.NAME_ARGUMENTS, ", ", "<|tool_call|>[", "]",
                            limits=go.INDENTED)))
