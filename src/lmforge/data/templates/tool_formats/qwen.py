"""Qwen and Hermes `<tool_call>` JSON blocks, Hermes 3's Python-style definitions, Qwen3-Coder's XML calls."""

import json
import re
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, call_from_json, dumps, function_of, loads

# -- qwen / hermes: <tool_call> JSON blocks ------------------------------------------------------------------


def _qwen_tools(tools: Tools) -> str:
    listed = "".join("\n" + dumps(tool) for tool in tools)
    return ("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
            "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
            f"{listed}\n</tools>\n\nFor each function call, return a json object with function name and "
            "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
            '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>')


def _qwen_calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(f'<tool_call>\n{{"name": "{call.name}", "arguments": {call.arguments_json()}}}\n</tool_call>'
                     for call in calls)


_TOOL_CALL_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def _qwen_parse(text: str) -> list[ToolCall]:
    return [call_from_json(loads(block, "a <tool_call> block")) for block in _TOOL_CALL_BLOCK.findall(text)]


# -- xml: Qwen3-Coder style <function=NAME><parameter=KEY>value</parameter></function> ---------------------

def _xml_tools(tools: Tools) -> str:
    listed = "".join("\n" + dumps(tool) for tool in tools)
    return ("# Tools\n\nYou have access to these functions:\n<tools>" + listed + "\n</tools>\n\n"
            "To call a function, reply with:\n<tool_call>\n<function=NAME>\n<parameter=ARGUMENT>\nVALUE\n"
            "</parameter>\n</function>\n</tool_call>")


def _xml_value(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


def _xml_calls(calls: tuple[ToolCall, ...]) -> str:
    blocks = []
    for call in calls:
        params = "".join(f"<parameter={key}>\n{_xml_value(value)}\n</parameter>\n"
                         for key, value in call.arguments.items())
        blocks.append(f"<tool_call>\n<function={call.name}>\n{params}</function>\n</tool_call>")
    return "\n".join(blocks)


_XML_FUNCTION = re.compile(r"<function=([^>\n]+)>\n?(.*?)</function>", re.DOTALL)
_XML_PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.DOTALL)


def _xml_parse(text: str) -> list[ToolCall]:
    calls = []
    for name, body in _XML_FUNCTION.findall(text):
        arguments: dict[str, Any] = {}
        for key, raw in _XML_PARAMETER.findall(body):
            try:
                value = json.loads(raw)
                arguments[key] = raw if isinstance(value, str) else value
            except json.JSONDecodeError:
                arguments[key] = raw  # a plain string value is written bare
        calls.append(ToolCall(name.strip(), arguments))
    return calls


# -- hermes3: Hermes 2 Pro / 3 function calling, Python-style signatures inside <tools> ------------------------

_PYTHON_TYPES = {"string": "str", "number": "float", "integer": "int", "boolean": "bool"}


def _python_type(spec: Any) -> str:
    """A JSON schema type as Hermes' template names it (its quirks included: an array's item type and a
    missing type both come out as `Union[]`)."""
    kind = spec.get("type") if isinstance(spec, dict) else None
    if isinstance(kind, str) and kind in _PYTHON_TYPES:
        return _PYTHON_TYPES[kind]
    if kind == "array":
        return "list[Union[]]"
    if kind == "object":
        extra = spec.get("additionalProperties")
        return f"dict[str, {_python_type(extra)}]" if extra is not None else "dict"
    if isinstance(kind, list):
        return "Union[" + ",".join(_python_type({"type": item}) for item in kind) + "]"
    return "Union[]"


def _hermes3_tools(tools: Tools) -> str:
    entries = []
    for tool in map(function_of, tools):
        properties = tool.get("parameters", {}).get("properties", {})
        signature = ", ".join(f"{name}: {_python_type(spec)}" for name, spec in properties.items())
        returns = f" -> {_python_type(tool['return'])}" if "return" in tool else ""
        args = "".join(f"        {name}({_python_type(spec)}): {spec.get('description', '').strip()}"
                       for name, spec in properties.items())
        doc = f"{tool['name']}({signature}){returns} - {tool.get('description', '')}\n\n"
        doc += ("    Args:\n" + args) if properties else ""
        if isinstance(tool.get("return"), dict) and "description" in tool["return"]:
            doc += "\n    Returns:\n        " + tool["return"]["description"]
        parameters = dumps(tool.get("parameters", {})) if properties else "{}"
        entries.append(f'{{"type": "function", "function": {{"name": "{tool["name"]}", "description": "{doc}", '
                       f'"parameters": {parameters}}}')
    return "\n".join(entries)


FORMATS = [
    ToolFormat("qwen", _qwen_tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>", call_words=("</tool_call>",),
               description="Qwen 2.5 / 3 and Hermes: `<tool_call>` JSON blocks, tools in `<tools>`"),
    ToolFormat("xml", _xml_tools, _xml_calls, _xml_parse, call_marker="<tool_call>", call_words=("</tool_call>",),
               description="Qwen3-Coder style XML: `<function=NAME>` with one `<parameter=KEY>` per argument"),
    ToolFormat("hermes3", _hermes3_tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>",
               call_words=("</tool_call>",),
               description="Hermes 2 Pro / 3: `<tool_call>` JSON blocks; tools as Python-style signatures"),
]
