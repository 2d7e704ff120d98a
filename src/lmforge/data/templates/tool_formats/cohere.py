"""Command R7B: a plan, then an action with a JSON list of numbered calls."""

import re
from dataclasses import replace

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, call_from_json, dumps, function_of, loads
from lmforge.errors import TemplateError


def _command_r7b_tools(tools: Tools) -> str:
    return ",\n".join(f'    {{"name": "{tool["name"]}", "description": "{tool.get("description", "")}", '
                       f'"parameters": {dumps(tool.get("parameters", {}))}, "responses": null}}'
                       for tool in map(function_of, tools))


def _command_r7b_calls(calls: tuple[ToolCall, ...]) -> str:
    listed = ",\n".join(f'    {{"tool_call_id": "{call.id}", "tool_name": "{call.name}", '
                        f'"parameters": {call.arguments_json()}}}' for call in calls)
    return f"<|START_ACTION|>[\n{listed}\n]<|END_ACTION|>"


def _command_r7b_parse(text: str) -> list[ToolCall]:
    match = re.search(r"<\|START_ACTION\|>(.*?)(?:<\|END_ACTION\|>|\Z)", text, re.DOTALL)
    if not match:
        return []
    calls = loads(match.group(1).strip(), "a <|START_ACTION|> block")
    if not isinstance(calls, list):
        raise TemplateError("a <|START_ACTION|> block must hold a JSON list of calls")
    return [replace(call_from_json({"name": call.get("tool_name"), "arguments": call.get("parameters", {})}),
                    id=str(call.get("tool_call_id", ""))) for call in calls]


FORMATS = [
    ToolFormat("command_r7b", _command_r7b_tools, _command_r7b_calls, _command_r7b_parse,
               call_marker="<|START_THINKING|>", call_ids="index",
               call_words=("<|END_THINKING|>", "<|START_ACTION|>", "<|END_ACTION|>"),
               render_answer=lambda text, calls: f"<|START_THINKING|>{text}<|END_THINKING|>{calls}",
               description="Command R7B: a `<|START_THINKING|>` plan, then `<|START_ACTION|>` numbered calls"),
]
