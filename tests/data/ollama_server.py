"""What Ollama's server does with a Modelfile and a chat request, up to the prompt text (a test helper).

A Modelfile's SYSTEM becomes the first message when the request has no system message; messages are
collated (consecutive messages of one role but `tool` merged with a blank line, all system messages
joined into `.System`); messages, calls and tools become Ollama's template structs (its template.go:
templateMessage, templateToolCall, templateTool: a tool's parameters a plain map, a nested object's properties
kept in the request's order; tools, a tool and call arguments print as their JSON), and the TEMPLATE is executed
with Go's text/template, here tests/data/gotemplate.py (or Go itself, `go_data` giving the same data as JSON).
"""

import re
from typing import Any

from lmforge.data.templates.messages import Message, split_thought
from tests.data.gotemplate import Evaluator, GoStruct, JsonList, JsonMap, JsonStruct, PropertyType, go_json

_VALUE = re.compile(r'^(TEMPLATE|SYSTEM) """(.*?)"""$', re.DOTALL | re.MULTILINE)


def parse_modelfile(text: str) -> dict[str, str]:
    """TEMPLATE and SYSTEM of a Modelfile written by lmforge."""
    return {name: value for name, value in _VALUE.findall(text)}


class PropertiesMap(GoStruct):
    """A nested object's properties (Ollama's api.ToolPropertiesMap): an ordered map behind a pointer, written by
    `json` in the request's key order; a template can neither range over it nor read a key as a field."""

    def __init__(self, properties: dict):
        super().__init__("*api.ToolPropertiesMap", {})
        self.properties = properties

    def go_json(self) -> str:
        return "{" + ",".join(f"{go_json(k)}:{go_json(v)}" for k, v in self.properties.items()) + "}"


def _property(spec: dict) -> GoStruct:
    kind = spec.get("type")
    return GoStruct("ToolProperty", {
        "AnyOf": [_property(s) for s in spec.get("anyOf", [])] or None,
        "Type": PropertyType([kind] if isinstance(kind, str) else kind or []),
        "Items": spec.get("items"), "Description": spec.get("description", ""), "Enum": spec.get("enum"),
        "Properties": PropertiesMap({k: _property(v) for k, v in spec["properties"].items()})
        if "properties" in spec else None,
        "Required": spec.get("required"),
    }, {"AnyOf": ("anyOf", True), "Type": ("type", True), "Items": ("items", True),
        "Description": ("description", True), "Enum": ("enum", True), "Properties": ("properties", True),
        "Required": ("required", True)})


def _tool(tool: dict) -> GoStruct:
    function = tool["function"]
    parameters = function.get("parameters", {})
    return JsonStruct("templateTool", {
        "Type": tool.get("type", "function"), "Items": None,
        "Function": GoStruct("templateToolFunction", {
            "Name": function["name"], "Description": function.get("description", ""),
            "Parameters": GoStruct("templateToolFunctionParameters", {
                "Type": parameters.get("type", ""), "Defs": parameters.get("$defs"), "Items": parameters.get("items"),
                "Required": parameters.get("required"),
                "Properties": JsonMap({k: _property(v) for k, v in parameters.get("properties", {}).items()}),
            }, {"Type": ("type", False), "Defs": ("$defs", True), "Items": ("items", True),
                "Required": ("required", True), "Properties": ("properties", False)}),
        }, {"Name": ("name", False), "Description": ("description", False), "Parameters": ("parameters", False)}),
    }, {"Type": ("type", False), "Items": ("items", True), "Function": ("function", False)})


def _message(message: dict) -> GoStruct:
    calls = [GoStruct("templateToolCall", {"ID": call.get("id", ""), "Function": GoStruct(
        "templateToolCallFunction", {"Index": call["function"].get("index", 0), "Name": call["function"]["name"],
                                     "Arguments": None if call["function"].get("arguments") is None
                                     else JsonMap(call["function"]["arguments"])})})
             for call in message.get("tool_calls", [])]
    return GoStruct("templateMessage", {
        "Role": message["role"], "Content": message["content"], "Thinking": message.get("thinking", ""),
        "Images": None, "ToolCalls": calls or None, "ToolName": message.get("tool_name", ""),
        "ToolCallID": message.get("tool_call_id", "")})


def request_messages(messages: list[Message], thought_words: tuple[str, str] | None) -> list[dict]:
    """A conversation as a client sends it to Ollama: a think block goes in `thinking`, apart from the content, and
    a tool result names its tool in `tool_name` (the call it answers: by id, else the next unanswered one)."""
    out, unanswered = [], []
    for message in messages:
        item = message.as_openai()
        if message.tool_calls:
            unanswered = list(message.tool_calls)
        if message.role == "tool" and unanswered:
            call = next((c for c in unanswered if c.id and c.id == message.tool_call_id), unanswered[0])
            unanswered.remove(call)
            item["tool_name"] = call.name
        if message.role == "assistant" and thought_words:
            thought, item["content"] = split_thought(message.content, *thought_words)
            if thought:
                item["thinking"] = thought
        out.append(item)
    return out


def collate(messages: list[dict], default_system: str) -> tuple[str, list[dict]]:
    if default_system and (not messages or messages[0]["role"] != "system"):
        messages = [{"role": "system", "content": default_system}, *messages]
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    collated: list[dict] = []
    for message in messages:
        if collated and collated[-1]["role"] == message["role"] and message["role"] != "tool":
            collated[-1] = {**collated[-1], "content": collated[-1]["content"] + "\n\n" + message["content"]}
        else:
            collated.append(message)
    return system, collated


def template_data(modelfile: dict[str, str], messages: list[dict], tools: list[dict] | None,
                  think: bool | None = None) -> dict[str, Any]:
    system, collated = collate(messages, modelfile.get("SYSTEM", ""))
    return {"System": system, "Messages": [_message(m) for m in collated],
            "Tools": JsonList(_tool(t) for t in tools) if tools else None, "Response": "",
            "Think": bool(think), "ThinkLevel": "", "IsThinkSet": think is not None}


def go_data(modelfile: dict[str, str], messages: list[dict], tools: list[dict] | None,
            think: bool | None = None) -> dict[str, Any]:
    """The same request for a Go program that builds Ollama's structs itself."""
    system, collated = collate(messages, modelfile.get("SYSTEM", ""))
    return {"system": system, "messages": collated, "tools": tools or [], "think": bool(think),
            "is_think_set": think is not None}


def ollama_prompt(modelfile_text: str, messages: list[Message], tools: list[dict] | None = None, *,
                  thought_words: tuple[str, str] | None = None, think: bool | None = None) -> str:
    """The prompt Ollama renders for a chat request on a model created from this Modelfile."""
    modelfile = parse_modelfile(modelfile_text)
    data = template_data(modelfile, request_messages(messages, thought_words), tools, think)
    return Evaluator(modelfile["TEMPLATE"]).render(data)
