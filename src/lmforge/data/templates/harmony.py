"""The `gpt_oss` tool format: OpenAI's Harmony, as gpt-oss's own chat template writes it.

Definitions are a TypeScript-like `namespace functions { ... }` (in the developer message, placed by the
template); each call is an assistant message addressed to its function,
` to=functions.NAME<|channel|>commentary json<|message|>{arguments}<|call|>` after the `<|start|>assistant`
header (several calls: one message each); text beside the calls is an analysis message before them.
`parse_calls` also reads the recipient written in the channel part
(`<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>`, how gpt-oss checkpoints write it)
and text decoded without Harmony's special tokens (serving drops them).

`JINJA_*` write the same for the chat template of saved tokenizers (tool_formats/gpt_oss.py registers them).
"""

import json
import re
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.errors import TemplateError

ANALYSIS = "<|channel|>analysis<|message|>"
NEXT_MESSAGE = "<|end|><|start|>assistant"  # closes a message and opens the assistant's next one
# an object property's type follows its name on a new line with this indentation, as gpt-oss's template writes it
_NESTED_INDENT = "\n" + " " * 16
ARRAY_ITEMS = {"string": "string[]", "number": "number[]", "integer": "number[]", "boolean": "boolean[]"}
_SCALARS = {"number": "number", "integer": "number", "boolean": "boolean"}


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _nullable(spec: dict[str, Any]) -> str:
    return " | null" if spec.get("nullable") else ""


def typescript_type(spec: Any) -> str:
    """A JSON schema as gpt-oss's template types it (its quirks included: unions of object variants are
    listed, since its check for them never takes effect)."""
    if not isinstance(spec, dict):
        return "any"
    kind = spec.get("type")
    if kind == "array":
        items = spec.get("items")
        if not items:
            return "any[]" + _nullable(spec)
        item_kind = items.get("type") if isinstance(items, dict) else None
        if isinstance(item_kind, str) and item_kind in ARRAY_ITEMS:
            return ARRAY_ITEMS[item_kind] + _nullable(spec)
        inner = typescript_type(items)
        return ("any[]" if inner == "object | object" or len(inner) > 50 else inner + "[]") + _nullable(spec)
    if isinstance(kind, list) and kind:
        return " | ".join(map(str, kind))
    if spec.get("oneOf"):
        variants = []
        for variant in spec["oneOf"]:
            text = typescript_type(variant)
            if isinstance(variant, dict) and variant.get("description"):
                text += "// " + variant["description"]
            if isinstance(variant, dict) and "default" in variant:
                text += " " * 20 + "// default: " + _tojson(variant["default"])
            variants.append(text)
        return " | \n".join(variants)
    if kind == "string":
        if spec.get("enum"):
            return '"' + '" | "'.join(map(str, spec["enum"])) + '"'
        return "string" + _nullable(spec)
    if isinstance(kind, str) and kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "object":
        properties = spec.get("properties")
        if not properties:
            return "object"
        required = spec.get("required") or []
        fields = [f"{name}{'' if name in required else '?'}: {_NESTED_INDENT}{typescript_type(prop)}"
                  for name, prop in properties.items()]
        return "{\n" + ", ".join(fields) + "}"
    return "any"


def _parameter(name: str, spec: dict[str, Any], required: list[str]) -> str:
    line = f"// {spec['description']}\n" if spec.get("description") else ""
    line += f"{name}{'' if name in required else '?'}: {typescript_type(spec)}"
    if "default" in spec:
        if spec.get("enum"):
            line += f", // default: {spec['default']}"
        elif spec.get("oneOf"):
            line += f"// default: {spec['default']}"
        else:
            line += ", // default: " + _tojson(spec["default"])
    return line + ",\n"


def render_tools(tools: list[dict[str, Any]]) -> str:
    """The `functions` namespace of the developer message."""
    parts = ["## functions\n\nnamespace functions {\n\n"]
    for tool in tools:
        function = tool.get("function", tool)
        parameters = function.get("parameters") or {}
        parts.append(f"// {function.get('description', '')}\ntype {function['name']} = ")
        if parameters.get("properties"):
            required = parameters.get("required") or []
            parts.append("(_: {\n" + "".join(_parameter(name, spec, required)
                                             for name, spec in parameters["properties"].items()) + "}) => any;\n\n")
        else:
            parts.append("() => any;\n\n")
    return "".join(parts) + "} // namespace functions"


def render_calls(calls: tuple[ToolCall, ...]) -> str:
    return "<|start|>assistant".join(f" to=functions.{call.name}<|channel|>commentary json<|message|>"
                                     f"{call.arguments_json()}<|call|>" for call in calls)


def render_answer(text: str, calls: str) -> str:
    """Text beside calls is an analysis message before them (as gpt-oss's template writes it)."""
    return f"{ANALYSIS}{text}{NEXT_MESSAGE}{calls}" if text else calls


_RECIPIENT = re.compile(r"to=functions\.([^\s<]+)")


def parse_calls(text: str) -> list[ToolCall]:
    """Every `to=functions.NAME` message with its JSON arguments, in order.

    Without Harmony's special tokens (decoded text) the reference's header reads `NAMEcommentary json{...}`:
    the channel name is then cut off the function name."""
    decoded = "<|" not in text
    decoder, calls, position = json.JSONDecoder(), [], 0
    while match := _RECIPIENT.search(text, position):
        name = match.group(1)
        if decoded and name.endswith("commentary") and name != "commentary":
            name = name.removesuffix("commentary")
        start = text.find("{", match.end())
        if start < 0:
            raise TemplateError(f"the call to `{name}` has no JSON arguments: {text[match.start():][:200]}")
        try:
            arguments, position = decoder.raw_decode(text, start)
        except json.JSONDecodeError as err:
            raise TemplateError(f"arguments of `{name}` are not valid JSON ({err.msg}): {text[start:start + 200]}") \
                from None
        if not isinstance(arguments, dict):
            raise TemplateError(f"tool call `{name}`: arguments must be a JSON object")
        calls.append(ToolCall(name, arguments))
    return calls


# -- the same in jinja (saved tokenizers) ------------------------------------------------------------------
# `lmforge_ts(spec)` types one schema as `typescript_type` does.
JINJA_MACROS = (
    "{%- macro lmforge_ts(spec) -%}"
    "{%- set kind = spec.type if spec is mapping and spec.type is defined else none -%}"
    "{%- set null = ' | null' if spec is mapping and spec.nullable is defined and spec.nullable else '' -%}"
    "{%- set arrays = {'string': 'string[]', 'number': 'number[]', 'integer': 'number[]', 'boolean': 'boolean[]'} -%}"
    "{%- if spec is not mapping -%}{{- 'any' -}}"
    "{%- elif kind == 'array' -%}"
    "{%- set items = spec['items'] if spec['items'] is defined else none -%}"
    "{%- if not items -%}{{- 'any[]' + null -}}"
    "{%- elif items is mapping and items.type is defined and items.type is string and items.type in arrays -%}"
    "{{- arrays[items.type] + null -}}"
    "{%- else -%}{%- set inner = lmforge_ts(items) -%}"
    "{{- ('any[]' if inner == 'object | object' or inner | length > 50 else inner + '[]') + null -}}{%- endif -%}"
    "{%- elif kind is iterable and kind is not string and kind is not mapping and kind | length > 0 -%}"
    "{{- kind | join(' | ') -}}"
    "{%- elif spec.oneOf is defined and spec.oneOf -%}"
    "{%- for variant in spec.oneOf -%}{{- lmforge_ts(variant) -}}"
    "{%- if variant is mapping and variant.description is defined and variant.description -%}"
    "{{- '// ' + variant.description -}}{%- endif -%}"
    "{%- if variant is mapping and variant.default is defined -%}"
    "{{- '" + " " * 20 + "// default: ' + variant.default | tojson -}}{%- endif -%}"
    "{%- if not loop.last -%}{{- ' | \\n' -}}{%- endif -%}{%- endfor -%}"
    "{%- elif kind == 'string' -%}"
    "{%- if spec.enum is defined and spec.enum -%}{{- '\"' + spec.enum | join('\" | \"') + '\"' -}}"
    "{%- else -%}{{- 'string' + null -}}{%- endif -%}"
    "{%- elif kind in ['number', 'integer'] -%}{{- 'number' -}}"
    "{%- elif kind == 'boolean' -%}{{- 'boolean' -}}"
    "{%- elif kind == 'object' -%}"
    "{%- if spec.properties is defined and spec.properties -%}"
    "{%- set required = spec.required if spec.required is defined and spec.required else [] -%}{{- '{\\n' -}}"
    "{%- for name, prop in spec.properties.items() -%}"
    "{{- name + ('' if name in required else '?') + ': \\n" + " " * 16 + "' + lmforge_ts(prop) -}}"
    "{{- ', ' if not loop.last else '' -}}{%- endfor -%}{{- '}' -}}"
    "{%- else -%}{{- 'object' -}}{%- endif -%}"
    "{%- else -%}{{- 'any' -}}{%- endif -%}"
    "{%- endmacro -%}"
)
# statements setting ns.tools from ns.tool_list, as `render_tools`
JINJA_DEFINITIONS = (
    "{%- set ns.tools = '## functions\\n\\nnamespace functions {\\n\\n' -%}"
    "{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}"
    "{%- set ns.tools = ns.tools + '// ' + (fn.description if fn.description is defined else '') + '\\ntype ' "
    "+ fn.name + ' = ' -%}"
    "{%- set params = fn.parameters if fn.parameters is defined and fn.parameters else {} -%}"
    "{%- if params.properties is defined and params.properties -%}"
    "{%- set required = params.required if params.required is defined and params.required else [] -%}"
    "{%- set ns.tools = ns.tools + '(_: {\\n' -%}"
    "{%- for name, spec in params.properties.items() -%}"
    "{%- if spec.description is defined and spec.description -%}"
    "{%- set ns.tools = ns.tools + '// ' + spec.description + '\\n' -%}{%- endif -%}"
    "{%- set ns.tools = ns.tools + name + ('' if name in required else '?') + ': ' + lmforge_ts(spec) -%}"
    "{%- if spec.default is defined -%}"
    "{%- if spec.enum is defined and spec.enum -%}"
    "{%- set ns.tools = ns.tools + ', // default: ' + spec.default | string -%}"
    "{%- elif spec.oneOf is defined and spec.oneOf -%}"
    "{%- set ns.tools = ns.tools + '// default: ' + spec.default | string -%}"
    "{%- else -%}{%- set ns.tools = ns.tools + ', // default: ' + spec.default | tojson -%}{%- endif -%}"
    "{%- endif -%}"
    "{%- set ns.tools = ns.tools + ',\\n' -%}"
    "{%- endfor -%}"
    "{%- set ns.tools = ns.tools + '}) => any;\\n\\n' -%}"
    "{%- else -%}{%- set ns.tools = ns.tools + '() => any;\\n\\n' -%}{%- endif -%}"
    "{%- endfor -%}"
    "{%- set ns.tools = ns.tools + '} // namespace functions' -%}"
)
# one call (an expression of `call` and `args`), the separator between calls, the whole answer
JINJA_CALL = "' to=functions.' + call.name + '<|channel|>commentary json<|message|>' + args + '<|call|>'"
JINJA_SEPARATOR = "<|start|>assistant"
JINJA_ANSWER = f"(('{ANALYSIS}' + text + '{NEXT_MESSAGE}') if text else '') + calls"
DESCRIPTION = ("gpt-oss (Harmony): `to=functions.NAME<|channel|>commentary json<|message|>{...}<|call|>` per call, "
               "tools as a TypeScript `namespace functions`")
