"""Qwen and Hermes `<tool_call>` JSON blocks, Hermes 3's Python-style definitions, Qwen3-Coder's XML calls."""

import re
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import (
    XML_VALUE_JINJA,
    ToolFormat,
    Tools,
    call_from_json,
    dumps,
    function_of,
    loads,
    parse_xml_value,
    xml_value,
)
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import (
    DESCRIPTION,
    NAME_ARGS,
    PROPERTIES,
    JinjaToolFormat,
    append_tools,
    q,
    set_tools,
)

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


def _xml_calls(calls: tuple[ToolCall, ...]) -> str:
    blocks = []
    for call in calls:
        params = "".join(f"<parameter={key}>\n{xml_value(value)}\n</parameter>\n"
                         for key, value in call.arguments.items())
        blocks.append(f"<tool_call>\n<function={call.name}>\n{params}</function>\n</tool_call>")
    return "\n".join(blocks)


_XML_FUNCTION = re.compile(r"<function=([^>\n]+)>\n?(.*?)</function>", re.DOTALL)
_XML_PARAMETER = re.compile(r"<parameter=([^>\n]+)>\n?(.*?)\n?</parameter>", re.DOTALL)


def _xml_parse(text: str) -> list[ToolCall]:
    return [ToolCall(name.strip(), {key: parse_xml_value(raw) for key, raw in _XML_PARAMETER.findall(body)})
            for name, body in _XML_FUNCTION.findall(text)]


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


_QWEN_JINJA_TOOLS = "".join([
    set_tools(q("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
                "with function signatures within <tools></tools> XML tags:\n<tools>")),
    "{%- for tool in ns.tool_list -%}" + append_tools("'\\n' + tool | tojson") + "{%- endfor -%}",
    append_tools(q('\n</tools>\n\nFor each function call, return a json object with function name and arguments '
                   'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
                   '<args-json-object>}\n</tool_call>')),
])
_QWEN_JINJA_CALL = "'<tool_call>\\n' + " + NAME_ARGS + " + '}\\n</tool_call>'"
_QWEN_GO = OllamaToolFormat(
    go.go_text("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
               "with function signatures within <tools></tools> XML tags:\n<tools>") + go.EACH_TOOL_ON_A_LINE
    + go.go_text('\n</tools>\n\nFor each function call, return a json object with function name and arguments '
                 'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
                 "<args-json-object>}\n</tool_call>"),
    "<tool_call>\n" + go.NAME_ARGUMENTS + "\n</tool_call>", "\n")

_XML_JINJA_TOOLS = "".join([
    set_tools(q("# Tools\n\nYou have access to these functions:\n<tools>")),
    "{%- for tool in ns.tool_list -%}" + append_tools("'\\n' + tool | tojson") + "{%- endfor -%}",
    append_tools(q("\n</tools>\n\nTo call a function, reply with:\n<tool_call>\n<function=NAME>\n<parameter=ARGUMENT>"
                   "\nVALUE\n</parameter>\n</function>\n</tool_call>")),
])
_XML_JINJA_CALL = (
    "{%- set ns.call = '<tool_call>\\n<function=' + call.name + '>\\n' -%}"
    "{%- for key, value in (call.arguments if call.arguments is mapping else {}).items() -%}"
    "{%- set ns.call = ns.call + '<parameter=' + key + '>\\n' + " + XML_VALUE_JINJA
    + " + '\\n</parameter>\\n' -%}{%- endfor -%}"
    "{%- set ns.call = ns.call + '</function>\\n</tool_call>' -%}"
)
_XML_GO_CALL = (
    "<tool_call>\n<function={{ .Function.Name }}>\n{{ range $key, $value := .Function.Arguments }}"
    '<parameter={{ $key }}>\n{{ if eq (printf "%T" $value) "string" }}{{ $value }}{{ else }}{{ json $value }}'
    "{{ end }}\n</parameter>\n{{ end }}</function>\n</tool_call>")
_XML_GO = OllamaToolFormat(
    go.go_text("# Tools\n\nYou have access to these functions:\n<tools>") + go.EACH_TOOL_ON_A_LINE
    + go.go_text("\n</tools>\n\nTo call a function, reply with:\n<tool_call>\n<function=NAME>\n"
                 "<parameter=ARGUMENT>\nVALUE\n</parameter>\n</function>\n</tool_call>"), _XML_GO_CALL, "\n")

# Hermes' Python-style type names (_python_type), as a jinja macro
_PYTHON_TYPE_MACRO = (
    "{%- macro lmforge_pytype(spec) -%}"
    "{%- set kind = spec.type if spec is mapping and spec.type is defined else none -%}"
    "{%- set basic = {'string': 'str', 'number': 'float', 'integer': 'int', 'boolean': 'bool'} -%}"
    "{%- if kind is string and kind in basic -%}{{- basic[kind] -}}"
    "{%- elif kind == 'array' -%}{{- 'list[Union[]]' -}}"
    "{%- elif kind == 'object' -%}{%- if spec.additionalProperties is defined -%}"
    "{{- 'dict[str, ' + lmforge_pytype(spec.additionalProperties) + ']' -}}{%- else -%}{{- 'dict' -}}{%- endif -%}"
    "{%- elif kind is iterable and kind is not string and kind is not none -%}{{- 'Union[' -}}"
    "{%- for item in kind -%}{{- lmforge_pytype({'type': item}) -}}{{- ',' if not loop.last else '' -}}"
    "{%- endfor -%}{{- ']' -}}"
    "{%- else -%}{{- 'Union[]' -}}{%- endif -%}"
    "{%- endmacro -%}"
)
_HERMES3_JINJA_TOOLS = "".join([
    set_tools("''"),
    "{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}",
    f"{{%- set props = {PROPERTIES} -%}}",
    "{%- set sig = namespace(text='', args='') -%}",
    "{%- for name, spec in props.items() -%}"
    "{%- set sig.text = sig.text + (', ' if not loop.first else '') + name + ': ' + lmforge_pytype(spec) -%}"
    "{%- set sig.args = sig.args + '        ' + name + '(' + lmforge_pytype(spec) + '): ' + "
    "((spec.description if spec.description is defined else '') | trim) -%}{%- endfor -%}",
    "{%- set doc = fn.name + '(' + sig.text + ')' + ((' -> ' + lmforge_pytype(fn['return'])) if fn['return'] is "
    "defined else '') + ' - ' + " + DESCRIPTION + " + '\\n\\n' + (('    Args:\\n' + sig.args) if props else '') -%}",
    "{%- if fn['return'] is defined and fn['return'] is mapping and fn['return'].description is defined -%}"
    "{%- set doc = doc + '\\n    Returns:\\n        ' + fn['return'].description -%}{%- endif -%}",
    append_tools("('\\n' if not loop.first else '') + '{\"type\": \"function\", \"function\": {\"name\": \"' + "
                 "fn.name + '\", \"description\": \"' + doc + '\", \"parameters\": ' + ((fn.parameters | tojson) "
                 "if props else '{}') + '}'"),
    "{%- endfor -%}",
])
# Hermes' Python-style type name of `$p`, a parameter (_python_type)
_GO_PYTHON_TYPE = "".join(
    [f'{{{{ {"if" if i == 0 else "else if"} eq (print $p.Type) "{kind}" }}}}{name}'
     for i, (kind, name) in enumerate([("string", "str"), ("number", "float"), ("integer", "int"),
                                       ("boolean", "bool"), ("array", "list[Union[]]"), ("object", "dict")])]
    + ["{{ else }}Union[]{{ end }}"])
_HERMES3_GO_TOOLS = (
    '{{ range $k, $t := $.Tools }}{{ if $k }}\n{{ end }}{"type": "function", "function": {"name": '
    '"{{ $t.Function.Name }}", "description": "{{ $t.Function.Name }}({{ $sep := "" }}'
    "{{ range $arg, $p := $t.Function.Parameters.Properties }}{{ $sep }}{{ $sep = \", \" }}{{ $arg }}: "
    + _GO_PYTHON_TYPE + "{{ end }}) - {{ $t.Function.Description }}\n\n{{ if $t.Function.Parameters.Properties }}"
    "    Args:\n{{ range $arg, $p := $t.Function.Parameters.Properties }}        {{ $arg }}(" + _GO_PYTHON_TYPE
    + '): {{ $p.Description }}{{ end }}{{ end }}", "parameters": {{ if $t.Function.Parameters.Properties }}'
    "{{ json $t.Function.Parameters }}{{ else }}{}{{ end }}}{{ end }}")  # one brace short, as Hermes' own

register_tool_format(ToolFormat(
    "qwen", _qwen_tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>", call_words=("</tool_call>",),
    description="Qwen 2.5 / 3 and Hermes: `<tool_call>` JSON blocks, tools in `<tools>`",
    jinja=JinjaToolFormat(_QWEN_JINJA_TOOLS, _QWEN_JINJA_CALL, "\n"), ollama=_QWEN_GO), aliases=("hermes",))
register_tool_format(ToolFormat(
    "xml", _xml_tools, _xml_calls, _xml_parse, call_marker="<tool_call>", call_words=("</tool_call>",),
    description="Qwen3-Coder style XML: `<function=NAME>` with one `<parameter=KEY>` per argument",
    jinja=JinjaToolFormat(_XML_JINJA_TOOLS, _XML_JINJA_CALL, "\n"), ollama=_XML_GO))
register_tool_format(ToolFormat(
    "hermes3", _hermes3_tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>", call_words=("</tool_call>",),
    description="Hermes 2 Pro / 3: `<tool_call>` JSON blocks; tools as Python-style signatures",
    jinja=JinjaToolFormat(_HERMES3_JINJA_TOOLS, _QWEN_JINJA_CALL, "\n", macros=_PYTHON_TYPE_MACRO),
    ollama=OllamaToolFormat(
        _HERMES3_GO_TOOLS, _QWEN_GO.call, "\n",
        limits="the Python-style definitions leave out `return` and `additionalProperties` (Ollama does not carry "
               "them), name a list of types `Union[]` and keep parameter descriptions untrimmed")))
