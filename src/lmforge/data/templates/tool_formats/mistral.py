"""Mistral: `[AVAILABLE_TOOLS]` / `[TOOL_CALLS]` JSON lists (v3, Tekken v7) and Small 3.2's per-call form."""

import re
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps, json_calls, loads, with_ids
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import NAME_ARGS, JinjaToolFormat, set_tools
from lmforge.errors import TemplateError


def _mistral_tools(tools: Tools) -> str:
    return f"[AVAILABLE_TOOLS] {dumps(tools)}[/AVAILABLE_TOOLS]"


def _mistral_call(call: ToolCall) -> dict[str, Any]:
    out: dict[str, Any] = {"name": call.name, "arguments": call.arguments}
    if call.id:
        out["id"] = call.id
    return out


def _mistral_calls(calls: tuple[ToolCall, ...]) -> str:
    return "[TOOL_CALLS] " + dumps([_mistral_call(call) for call in calls])


def _mistral_parse(text: str) -> list[ToolCall]:
    if "[TOOL_CALLS]" not in text:
        return []
    listed = text.split("[TOOL_CALLS]", 1)[1].strip()
    calls = json_calls(listed, "arguments")
    parsed = loads(listed, "the tool call") if calls else []
    return with_ids(calls, parsed if isinstance(parsed, list) else [parsed])


# Tekken (v7): `[AVAILABLE_TOOLS][...]` and `[TOOL_CALLS][...]` without a space, the text kept before the calls
def _mistral_v7_tools(tools: Tools) -> str:
    return f"[AVAILABLE_TOOLS]{dumps(tools)}[/AVAILABLE_TOOLS]"


def _mistral_v7_calls(calls: tuple[ToolCall, ...]) -> str:
    return "[TOOL_CALLS]" + dumps([_mistral_call(call) for call in calls])


# Mistral Small 3.2 (v11 tokenizers): `[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{json}` per call
def _mistral_small_calls(calls: tuple[ToolCall, ...]) -> str:
    return "".join(f"[TOOL_CALLS]{call.name}" + (f"[CALL_ID]{call.id}" if call.id else "")
                   + f"[ARGS]{call.arguments_json()}" for call in calls)


_MISTRAL_SMALL_CALL = re.compile(r"\[TOOL_CALLS\]([^\[]+?)(?:\[CALL_ID\]([^\[]*))?\[ARGS\]")


def _mistral_small_parse(text: str) -> list[ToolCall]:
    calls = []
    matches = list(_MISTRAL_SMALL_CALL.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        arguments = loads(text[match.end():end].strip(), f"arguments of `{match.group(1)}`")
        if not isinstance(arguments, dict):
            raise TemplateError(f"tool call `{match.group(1)}`: arguments must be a JSON object")
        calls.append(ToolCall(match.group(1).strip(), arguments, match.group(2) or ""))
    return calls


# one call as a JSON object with its id (v3, v7)
_JINJA_CALL = NAME_ARGS + " + ((', \"id\": \"' + call_id + '\"') if call_id else '') + '}'"
_GO_CALL = go.NAME_ARGUMENTS[:-1] + '{{ if .ID }}, "id": "{{ .ID }}"{{ end }}}'
_V7_JINJA_TOOLS = set_tools("'[AVAILABLE_TOOLS]' + ns.tool_list | tojson + '[/AVAILABLE_TOOLS]'")
_V7_GO_TOOLS = "[AVAILABLE_TOOLS]{{ json $.Tools }}[/AVAILABLE_TOOLS]"

register_tool_format(ToolFormat(
    "mistral", _mistral_tools, _mistral_calls, _mistral_parse,
    call_marker="[TOOL_CALLS]", content_separator="", call_ids="alnum9",
    description="Mistral v3: `[AVAILABLE_TOOLS]` and `[TOOL_CALLS]` JSON lists, 9-character call ids",
    jinja=JinjaToolFormat(set_tools("'[AVAILABLE_TOOLS] ' + ns.tool_list | tojson + '[/AVAILABLE_TOOLS]'"),
                          _JINJA_CALL, ", ", "'[TOOL_CALLS] ['", "']'"),
    ollama=OllamaToolFormat("[AVAILABLE_TOOLS] {{ json $.Tools }}[/AVAILABLE_TOOLS]", _GO_CALL, ", ",
                            "[TOOL_CALLS] [", "]", limits=go.CALL_IDS)))
register_tool_format(ToolFormat(
    "mistral_v7", _mistral_v7_tools, _mistral_v7_calls, _mistral_parse,
    call_marker="[TOOL_CALLS]", content_separator="",
    call_ids="alnum9", description="Mistral Tekken v7: `[TOOL_CALLS][...]` JSON list after the text",
    jinja=JinjaToolFormat(_V7_JINJA_TOOLS, _JINJA_CALL, ", ", "'[TOOL_CALLS]['", "']'"),
    ollama=OllamaToolFormat(_V7_GO_TOOLS, _GO_CALL, ", ", "[TOOL_CALLS][", "]", limits=go.CALL_IDS)))
register_tool_format(ToolFormat(
    "mistral_small", _mistral_v7_tools, _mistral_small_calls, _mistral_small_parse,
    call_marker="[TOOL_CALLS]", call_words=("[CALL_ID]", "[ARGS]"),
    content_separator="", call_ids="alnum9",
    description="Mistral Small 3.2: `[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}` per call",
    jinja=JinjaToolFormat(
        _V7_JINJA_TOOLS,
        "'[TOOL_CALLS]' + call.name + (('[CALL_ID]' + call_id) if call_id else '') + '[ARGS]' + args"),
    ollama=OllamaToolFormat(
        _V7_GO_TOOLS, "[TOOL_CALLS]" + go.NAME + "{{ if .ID }}[CALL_ID]{{ .ID }}{{ end }}[ARGS]" + go.ARGUMENTS,
        limits=go.CALL_IDS)))
# Ministral 3 / Mistral Large 3 / Devstral 2: Small 3.2's per-call form without call ids
register_tool_format(ToolFormat(
    "ministral3", _mistral_v7_tools, _mistral_small_calls, _mistral_small_parse,
    call_marker="[TOOL_CALLS]", call_words=("[ARGS]",), content_separator="",
    description="Ministral 3: `[TOOL_CALLS]NAME[ARGS]{...}` per call, no call ids",
    jinja=JinjaToolFormat(_V7_JINJA_TOOLS, "'[TOOL_CALLS]' + call.name + '[ARGS]' + args"),
    ollama=OllamaToolFormat(_V7_GO_TOOLS, "[TOOL_CALLS]" + go.NAME + "[ARGS]" + go.ARGUMENTS)))
