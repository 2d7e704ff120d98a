"""Command R7B: a plan, then an action with a JSON list of numbered calls."""

import re
from dataclasses import replace

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, call_from_json, dumps, function_of, loads
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import DESCRIPTION, JinjaToolFormat, each_function, set_tools
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


register_tool_format(ToolFormat(
    "command_r7b", _command_r7b_tools, _command_r7b_calls, _command_r7b_parse,
    call_marker="<|START_THINKING|>", call_ids="index",
    call_words=("<|END_THINKING|>", "<|START_ACTION|>", "<|END_ACTION|>"),
    render_answer=lambda text, calls: f"<|START_THINKING|>{text}<|END_THINKING|>{calls}",
    description="Command R7B: a `<|START_THINKING|>` plan, then `<|START_ACTION|>` numbered calls",
    jinja=JinjaToolFormat(
        set_tools("''") + each_function(
            "'    {\"name\": \"' + fn.name + '\", \"description\": \"' + " + DESCRIPTION + " + '\", "
            "\"parameters\": ' + (fn.parameters if fn.parameters is defined else {}) | tojson + ', \"responses\": "
            "null}'", ",\n"),
        "'    {\"tool_call_id\": \"' + call_id + '\", \"tool_name\": \"' + call.name + "
        "'\", \"parameters\": ' + args + '}'", ",\n", "'<|START_ACTION|>[\\n'", "'\\n]<|END_ACTION|>'",
        answer="'<|START_THINKING|>' + text + '<|END_THINKING|>' + calls"),
    ollama=OllamaToolFormat(
        '{{ range $k, $t := $.Tools }}{{ if $k }},\n{{ end }}    {"name": "{{ $t.Function.Name }}", "description": '
        '"{{ $t.Function.Description }}", "parameters": {{ json $t.Function.Parameters }}, "responses": null}'
        "{{ end }}",
        '    {"tool_call_id": "{{ .ID }}", "tool_name": "' + go.NAME + '", "parameters": ' + go.ARGUMENTS + "}",
        ",\n", "<|START_ACTION|>[\n", "\n]<|END_ACTION|>", answer=("<|START_THINKING|>", "<|END_THINKING|>"),
        limits=go.CALL_IDS)))
