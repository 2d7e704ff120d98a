"""default: ReAct-style `Action:` / `Action Input:` lines, for families without a native format."""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, function_of, loads


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


FORMATS = [
    ToolFormat("default", _react_tools, _react_calls, _react_parse, call_marker="Action:",
               description="ReAct-style `Action:` / `Action Input:` lines, for families without their own"),
]
