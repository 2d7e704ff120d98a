"""Tool formats: how a family writes tool definitions and tool calls, and how calls are parsed back.

Each format renders both directions: `render_tools` (the definitions, placed by the template),
`render_calls` (an assistant's calls, supervised like its answer) and `parse_calls` (the model's
output back into `ToolCall`s, for chat and serving). `parse_calls(render_calls(calls)) == calls`
holds for every format (tests/data/test_templates_tools.py).
"""

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lmforge.data.templates import harmony
from lmforge.data.templates.messages import ToolCall
from lmforge.errors import TemplateError

Tools = list[dict[str, Any]]


@dataclass(frozen=True)
class ToolFormat:
    name: str
    render_tools: Callable[[Tools], str]
    render_calls: Callable[[tuple[ToolCall, ...]], str]
    parse_calls: Callable[[str], list[ToolCall]]
    content_separator: str = "\n"  # between an assistant's text and its calls
    description: str = ""
    call_ids: str = ""  # ids the format writes on calls and results: "alnum9" (Mistral), "index" (Command R7B)
    # how an answer's text and its rendered calls combine (default: text, content_separator, calls)
    render_answer: Callable[[str, str], str] | None = None
    # the text that opens the calls in an answer (what precedes it is the answer's content); "" for
    # formats whose calls are the whole answer (Llama 3's JSON, GLM-4's name line)
    call_marker: str = ""

    def join(self, text: str, calls: str) -> str:
        """An answer's text and its rendered calls, as the format writes them together."""
        if self.render_answer is not None:
            return self.render_answer(text, calls)
        return f"{text}{self.content_separator}{calls}" if text else calls


def _dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _function(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool)


def _call_from_json(obj: Any, arguments_key: str = "arguments") -> ToolCall:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        raise TemplateError(f"a tool call must be a JSON object with a string `name`, got {_dumps(obj)}")
    arguments = obj.get(arguments_key, obj.get("arguments", obj.get("parameters", {})))
    if isinstance(arguments, str):
        arguments = _loads(arguments, "tool call arguments")
    if not isinstance(arguments, dict):
        raise TemplateError(f"tool call `{obj['name']}`: arguments must be a JSON object")
    return ToolCall(obj["name"], arguments)


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise TemplateError(f"{what} is not valid JSON ({err.msg} at column {err.colno}): {text[:200]}") from None


# -- default: ReAct-style "Action: / Action Input:" for families without a native format -----------------

def _react_tools(tools: Tools) -> str:
    lines = ["You can use these tools:"]
    for tool in map(_function, tools):
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
    names = ", ".join(tool["name"] for tool in map(_function, tools))
    lines += ["To use a tool, answer in this format:", "```", f"Action: the tool name, one of [{names}]",
              "Action Input: the tool's arguments as one JSON object", "```", ""]
    return "\n".join(lines)


def _react_calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(f"Action: {call.name}\nAction Input: {call.arguments_json()}" for call in calls)


_REACT = re.compile(r"Action:\s*(.+?)\s*\nAction Input:\s*(.*?)(?=\nAction:|\Z)", re.DOTALL)


def _react_parse(text: str) -> list[ToolCall]:
    return [ToolCall(name.strip(), _loads(args.strip(), f"arguments of `{name.strip()}`"))
            for name, args in _REACT.findall(text)]


# -- qwen / hermes: <tool_call> JSON blocks ------------------------------------------------------------------

def _qwen_tools(tools: Tools) -> str:
    listed = "".join("\n" + _dumps(tool) for tool in tools)
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
    return [_call_from_json(_loads(block, "a <tool_call> block")) for block in _TOOL_CALL_BLOCK.findall(text)]


# -- llama3: one JSON object {"name", "parameters"} (several: a JSON list) ----------------------------------

def _llama3_tools(tools: Tools) -> str:
    listed = "".join(_dumps(tool, indent=4) + "\n\n" for tool in tools)
    return ("Given the following functions, please respond with a JSON for a function call with its proper "
            "arguments that best answers the given prompt.\n\n"
            'Respond in the format {"name": function name, "parameters": dictionary of argument name and its '
            f'value}}.Do not use variables.\n\n{listed}')


def _llama3_calls(calls: tuple[ToolCall, ...]) -> str:
    objects = [f'{{"name": "{call.name}", "parameters": {call.arguments_json()}}}' for call in calls]
    return objects[0] if len(objects) == 1 else "[" + ", ".join(objects) + "]"


def _json_calls(text: str, arguments_key: str) -> list[ToolCall]:
    text = text.strip()
    if not text.startswith(("{", "[")):
        return []
    parsed = _loads(text, "the tool call")
    return [_call_from_json(obj, arguments_key) for obj in (parsed if isinstance(parsed, list) else [parsed])]


# -- mistral: [AVAILABLE_TOOLS] / [TOOL_CALLS] JSON lists --------------------------------------------------

def _mistral_tools(tools: Tools) -> str:
    return f"[AVAILABLE_TOOLS] {_dumps(tools)}[/AVAILABLE_TOOLS]"


def _mistral_call(call: ToolCall) -> dict[str, Any]:
    out: dict[str, Any] = {"name": call.name, "arguments": call.arguments}
    if call.id:
        out["id"] = call.id
    return out


def _mistral_calls(calls: tuple[ToolCall, ...]) -> str:
    return "[TOOL_CALLS] " + _dumps([_mistral_call(call) for call in calls])


def _with_ids(calls: list[ToolCall], objects: list[Any]) -> list[ToolCall]:
    return [replace(call, id=str(obj.get("id", ""))) if isinstance(obj, dict) else call
            for call, obj in zip(calls, objects, strict=True)]


def _mistral_parse(text: str) -> list[ToolCall]:
    if "[TOOL_CALLS]" not in text:
        return []
    listed = text.split("[TOOL_CALLS]", 1)[1].strip()
    calls = _json_calls(listed, "arguments")
    parsed = _loads(listed, "the tool call") if calls else []
    return _with_ids(calls, parsed if isinstance(parsed, list) else [parsed])


# Tekken (v7): `[AVAILABLE_TOOLS][...]` and `[TOOL_CALLS][...]` without a space, the text kept before the calls
def _mistral_v7_tools(tools: Tools) -> str:
    return f"[AVAILABLE_TOOLS]{_dumps(tools)}[/AVAILABLE_TOOLS]"


def _mistral_v7_calls(calls: tuple[ToolCall, ...]) -> str:
    return "[TOOL_CALLS]" + _dumps([_mistral_call(call) for call in calls])


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
        arguments = _loads(text[match.end():end].strip(), f"arguments of `{match.group(1)}`")
        if not isinstance(arguments, dict):
            raise TemplateError(f"tool call `{match.group(1)}`: arguments must be a JSON object")
        calls.append(ToolCall(match.group(1).strip(), arguments, match.group(2) or ""))
    return calls


# -- glm4: "name\n{arguments}" ----------------------------------------------------------------------------

def _glm4_tools(tools: Tools) -> str:
    parts = ["# 可用工具"]
    for tool in map(_function, tools):
        parts.append(f"\n\n## {tool['name']}\n\n{_dumps(tool, indent=4)}\n"
                     "在调用上述函数时，请使用 Json 格式表示调用的参数。")
    return "".join(parts)


def _glm4_calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(f"{call.name}\n{call.arguments_json()}" for call in calls)


def _glm4_parse(text: str) -> list[ToolCall]:
    calls, lines = [], text.strip().split("\n")
    for name, args in zip(lines[::2], lines[1::2], strict=False):
        if not args.lstrip().startswith("{"):
            return []
        calls.append(ToolCall(name.strip(), _loads(args, f"arguments of `{name.strip()}`")))
    return calls


# -- xml: Qwen3-Coder style <function=NAME><parameter=KEY>value</parameter></function> ---------------------

def _xml_tools(tools: Tools) -> str:
    listed = "".join("\n" + _dumps(tool) for tool in tools)
    return ("# Tools\n\nYou have access to these functions:\n<tools>" + listed + "\n</tools>\n\n"
            "To call a function, reply with:\n<tool_call>\n<function=NAME>\n<parameter=ARGUMENT>\nVALUE\n"
            "</parameter>\n</function>\n</tool_call>")


def _xml_value(value: Any) -> str:
    return value if isinstance(value, str) else _dumps(value)


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
    for tool in map(_function, tools):
        properties = tool.get("parameters", {}).get("properties", {})
        signature = ", ".join(f"{name}: {_python_type(spec)}" for name, spec in properties.items())
        returns = f" -> {_python_type(tool['return'])}" if "return" in tool else ""
        args = "".join(f"        {name}({_python_type(spec)}): {spec.get('description', '').strip()}"
                       for name, spec in properties.items())
        doc = f"{tool['name']}({signature}){returns} - {tool.get('description', '')}\n\n"
        doc += ("    Args:\n" + args) if properties else ""
        if isinstance(tool.get("return"), dict) and "description" in tool["return"]:
            doc += "\n    Returns:\n        " + tool["return"]["description"]
        parameters = _dumps(tool.get("parameters", {})) if properties else "{}"
        entries.append(f'{{"type": "function", "function": {{"name": "{tool["name"]}", "description": "{doc}", '
                       f'"parameters": {parameters}}}')
    return "\n".join(entries)


# -- command_r7b: a plan, then an action with a JSON list of numbered calls -----------------------------

def _command_r7b_tools(tools: Tools) -> str:
    return ",\n".join(f'    {{"name": "{tool["name"]}", "description": "{tool.get("description", "")}", '
                       f'"parameters": {_dumps(tool.get("parameters", {}))}, "responses": null}}'
                       for tool in map(_function, tools))


def _command_r7b_calls(calls: tuple[ToolCall, ...]) -> str:
    listed = ",\n".join(f'    {{"tool_call_id": "{call.id}", "tool_name": "{call.name}", '
                        f'"parameters": {call.arguments_json()}}}' for call in calls)
    return f"<|START_ACTION|>[\n{listed}\n]<|END_ACTION|>"


def _command_r7b_parse(text: str) -> list[ToolCall]:
    match = re.search(r"<\|START_ACTION\|>(.*?)(?:<\|END_ACTION\|>|\Z)", text, re.DOTALL)
    if not match:
        return []
    calls = _loads(match.group(1).strip(), "a <|START_ACTION|> block")
    if not isinstance(calls, list):
        raise TemplateError("a <|START_ACTION|> block must hold a JSON list of calls")
    return [replace(_call_from_json({"name": call.get("tool_name"), "arguments": call.get("parameters", {})}),
                    id=str(call.get("tool_call_id", ""))) for call in calls]


# -- llama4: `<|python_start|>TEXT<|python_end|>` then the calls' JSON objects back to back ------------------

def _llama4_calls(calls: tuple[ToolCall, ...]) -> str:
    return "".join(f'{{"name": "{call.name}", "parameters": {call.arguments_json()}}}' for call in calls)


def _concatenated_json_calls(text: str, arguments_key: str) -> list[ToolCall]:
    """Calls written as JSON objects one after another (no list, no separator)."""
    decoder, calls, position = json.JSONDecoder(), [], 0
    text = text.strip()
    while position < len(text):
        try:
            obj, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise TemplateError(f"a tool call is not valid JSON ({err.msg} at column {err.colno}): "
                                f"{text[position:position + 200]}") from None
        calls.append(_call_from_json(obj, arguments_key))
        position = end
        while position < len(text) and text[position].isspace():
            position += 1
    return calls


def _llama4_parse(text: str) -> list[ToolCall]:
    calls = text.split("<|python_end|>", 1)[1] if "<|python_end|>" in text else text
    return _concatenated_json_calls(calls, "parameters") if calls.strip().startswith("{") else []


# -- internlm2: `<|action_start|><|plugin|>` blocks; tools in a `system name=<|plugin|>` turn ------------

def _internlm2_tools(tools: Tools) -> str:
    return "[" + ", ".join(_dumps(tool) for tool in map(_function, tools)) + "]"


def _internlm2_calls(calls: tuple[ToolCall, ...]) -> str:
    return "".join(f'<|action_start|><|plugin|>\n{{"name": "{call.name}", "arguments": {call.arguments_json()}}}'
                   "<|action_end|>" for call in calls)


_ACTION = re.compile(r"<\|action_start\|><\|plugin\|>\s*(.*?)\s*<\|action_end\|>", re.DOTALL)


def _internlm2_parse(text: str) -> list[ToolCall]:
    return [_call_from_json(_loads(block, "an <|action_start|> block")) for block in _ACTION.findall(text)]


# -- nemotron: `<TOOLCALL>[...]</TOOLCALL>` JSON lists; tools in `<AVAILABLE_TOOLS>` -----------------------

def _nemotron_tools(tools: Tools) -> str:
    listed = ", ".join(_dumps(tool) for tool in map(_function, tools))
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
    return [call for block in _TOOLCALL.findall(text) for call in _json_calls(block, "arguments")]


# -- granite: definitions as an indented JSON list, calls as `<|tool_call|>` and a JSON list ----------------

def _granite_tools(tools: Tools) -> str:
    return _dumps(tools, indent=4)


def _granite_calls(calls: tuple[ToolCall, ...]) -> str:
    return "<|tool_call|>" + _dumps([{"name": call.name, "arguments": call.arguments} for call in calls])


def _granite_parse(text: str) -> list[ToolCall]:
    if "<|tool_call|>" not in text:
        return []
    return _json_calls(text.split("<|tool_call|>", 1)[1], "arguments")


TOOL_FORMATS: dict[str, ToolFormat] = {
    fmt.name: fmt
    for fmt in [
        ToolFormat("default", _react_tools, _react_calls, _react_parse, call_marker="Action:",
                   description="ReAct-style `Action:` / `Action Input:` lines, for families without their own"),
        ToolFormat("qwen", _qwen_tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>",
                   description="Qwen 2.5 / 3 and Hermes: `<tool_call>` JSON blocks, tools in `<tools>`"),
        ToolFormat("llama3", _llama3_tools, _llama3_calls, lambda text: _json_calls(text, "parameters"),
                   description='Llama 3.1+: one JSON object {"name", "parameters"}, tools before the first question'),
        ToolFormat("mistral", _mistral_tools, _mistral_calls, _mistral_parse,
                   call_marker="[TOOL_CALLS]", content_separator="", call_ids="alnum9",
                   description="Mistral v3: `[AVAILABLE_TOOLS]` and `[TOOL_CALLS]` JSON lists, 9-character call ids"),
        ToolFormat("mistral_v7", _mistral_v7_tools, _mistral_v7_calls, _mistral_parse,
                   call_marker="[TOOL_CALLS]", content_separator="",
                   call_ids="alnum9", description="Mistral Tekken v7: `[TOOL_CALLS][...]` JSON list after the text"),
        ToolFormat("mistral_small", _mistral_v7_tools, _mistral_small_calls, _mistral_small_parse,
                   call_marker="[TOOL_CALLS]",
                   content_separator="", call_ids="alnum9",
                   description="Mistral Small 3.2: `[TOOL_CALLS]NAME[CALL_ID]ID[ARGS]{...}` per call"),
        ToolFormat("glm4", _glm4_tools, _glm4_calls, _glm4_parse,
                   description="GLM-4: the tool name on one line, its JSON arguments on the next"),
        ToolFormat("xml", _xml_tools, _xml_calls, _xml_parse, call_marker="<tool_call>",
                   description="Qwen3-Coder style XML: `<function=NAME>` with one `<parameter=KEY>` per argument"),
        ToolFormat("hermes3", _hermes3_tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>",
                   description="Hermes 2 Pro / 3: `<tool_call>` JSON blocks; tools as Python-style signatures"),
        ToolFormat("command_r7b", _command_r7b_tools, _command_r7b_calls, _command_r7b_parse,
                   call_marker="<|START_THINKING|>", call_ids="index",
                   render_answer=lambda text, calls: f"<|START_THINKING|>{text}<|END_THINKING|>{calls}",
                   description="Command R7B: a `<|START_THINKING|>` plan, then `<|START_ACTION|>` numbered calls"),
        ToolFormat("llama4", _llama3_tools, _llama4_calls, _llama4_parse, call_marker="<|python_start|>",
                   render_answer=lambda text, calls: f"<|python_start|>{text}<|python_end|>{calls}",
                   description='Llama 4: `<|python_start|>TEXT<|python_end|>` then {"name", "parameters"} objects'),
        ToolFormat("internlm2", _internlm2_tools, _internlm2_calls, _internlm2_parse,
                   call_marker="<|action_start|>", content_separator="",
                   description="InternLM2: `<|action_start|><|plugin|>` JSON calls, tools in a plugin system turn"),
        ToolFormat("nemotron", _nemotron_tools, _nemotron_calls, _nemotron_parse, call_marker="<TOOLCALL>",
                   description="NVIDIA Nemotron Nano 2: `<TOOLCALL>[...]</TOOLCALL>`, tools in `<AVAILABLE_TOOLS>`"),
        ToolFormat("granite", _granite_tools, _granite_calls, _granite_parse, call_marker="<|tool_call|>",
                   description="Granite 3: `<|tool_call|>` and a JSON list; tools in an `available_tools` turn"),
        ToolFormat("gpt_oss", harmony.render_tools, harmony.render_calls, harmony.parse_calls,
                   render_answer=harmony.render_answer, description=harmony.DESCRIPTION),
    ]
}
TOOL_FORMATS["hermes"] = TOOL_FORMATS["qwen"]


def get_tool_format(name: str) -> ToolFormat:
    if name not in TOOL_FORMATS:
        raise TemplateError(f"unknown tool_format `{name}`; known: {', '.join(sorted(TOOL_FORMATS))}")
    return TOOL_FORMATS[name]
