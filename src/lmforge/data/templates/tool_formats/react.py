"""default: ReAct-style `Action:` / `Action Input:` lines, for families without a native format."""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, function_of, loads
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import (
    DESCRIPTION,
    PROPERTIES,
    JinjaToolFormat,
    append_tools,
    q,
    set_tools,
)


def _react_tools(tools: Tools) -> str:
    lines = ["You can use these tools:"]
    for tool in map(function_of, tools):
        lines.append(f"> Tool Name: {tool['name']}")
        lines.append(f"Tool Description: {tool.get('description', '')}")
        required = set(tool.get("parameters", {}).get("required", []))
        properties = tool.get("parameters", {}).get("properties", {})
        if properties:
            lines.append("Tool Args:")
        for arg, spec in properties.items():
            flag = ", required" if arg in required else ""
            lines.append(f"  - {arg} ({spec.get('type', 'any')}{flag}): {spec.get('description', '')}")
        lines.append("")
    names = ", ".join(tool["name"] for tool in map(function_of, tools))
    lines += ["To use a tool, answer in this format:", "```", f"Action: the tool name, one of [{names}]",
              "Action Input: the tool's arguments as one JSON object", "```", ""]
    return "\n".join(lines)


def _react_calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(f"Action: {call.name}\nAction Input: {call.arguments_json()}" for call in calls)


_REACT = re.compile(r"Action:\s*(.+?)\s*\nAction Input:\s*(.*?)(?=\nAction:|\Z)", re.DOTALL)


def _react_parse(text: str) -> list[ToolCall]:
    return [ToolCall(name.strip(), loads(args.strip(), f"arguments of `{name.strip()}`"))
            for name, args in _REACT.findall(text)]


_JINJA_TOOLS = "".join([
    set_tools(q("You can use these tools:")),
    "{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}",
    append_tools(f"{q(chr(10) + '> Tool Name: ')} + fn.name + {q(chr(10) + 'Tool Description: ')} + {DESCRIPTION}"),
    f"{{%- set props = {PROPERTIES} -%}}",
    "{%- set required = fn.parameters.required if fn.parameters is defined and fn.parameters.required is defined "
    "else [] -%}",
    "{%- if props -%}" + append_tools(q("\nTool Args:")) + "{%- endif -%}",
    "{%- for arg, spec in props.items() -%}",
    append_tools("'\\n  - ' + arg + ' (' + (spec.type if spec.type is defined else 'any') + "
                 "(', required' if arg in required else '') + '): ' + (spec.description if spec.description is "
                 "defined else '')"),
    "{%- endfor -%}",
    append_tools("'\\n'"),
    "{%- endfor -%}",
    append_tools(q("\nTo use a tool, answer in this format:\n```\nAction: the tool name, one of [")
                 + " + (ns.tool_list | map(attribute='function') | map(attribute='name') | join(', ')) + "
                 + q("]\nAction Input: the tool's arguments as one JSON object\n```\n")),
])
_GO_TOOLS = (
    "You can use these tools:{{ range $t := $.Tools }}\n> Tool Name: {{ $t.Function.Name }}\nTool Description: "
    "{{ $t.Function.Description }}{{ if $t.Function.Parameters.Properties }}\nTool Args:{{ end }}"
    "{{ range $arg, $p := $t.Function.Parameters.Properties }}\n  - {{ $arg }} ({{ if $p.Type }}{{ $p.Type }}"
    "{{ else }}any{{ end }}{{ range $t.Function.Parameters.Required }}{{ if eq . $arg }}, required{{ end }}"
    "{{ end }}): {{ $p.Description }}{{ end }}\n{{ end }}\nTo use a tool, answer in this format:\n```\n"
    "Action: the tool name, one of [{{ range $k, $t := $.Tools }}{{ if $k }}, {{ end }}{{ $t.Function.Name }}"
    "{{ end }}]\nAction Input: the tool's arguments as one JSON object\n```\n")

register_tool_format(ToolFormat(
    "default", _react_tools, _react_calls, _react_parse, call_marker="Action:",
    description="ReAct-style `Action:` / `Action Input:` lines, for families without their own",
    jinja=JinjaToolFormat(_JINJA_TOOLS, "'Action: ' + call.name + '\\nAction Input: ' + args", "\n"),
    ollama=OllamaToolFormat(_GO_TOOLS, "Action: " + go.NAME + "\nAction Input: " + go.ARGUMENTS, "\n")))
