"""Seed-OSS: definitions as Python-style `def NAME(...)` docstrings after the system prompt, calls as
`<seed:tool_call>` blocks around `<function=NAME>` with one `<parameter=KEY>VALUE</parameter>` a line."""

import ast
import re
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, function_of, parse_xml_value
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, q, set_tools

_PY_TYPES = {"string": "str", "number": "int", "integer": "int", "boolean": "bool", "array": "list"}
# the template's own words: "[必填]" required, "[选填]" optional, and how to call ("工具调用请遵循如下格式")
_REQUIRED, _OPTIONAL = "[必填]", "[选填]"
_TAIL = ("\n工具调用请遵循如下格式:\n<seed:tool_call>\n<function=example_function_name>\n"
         "<parameter=example_parameter_1>value_1</parameter>\n<parameter=example_parameter_2>This is the value "
         "for the second parameter\nthat can span\nmultiple lines</parameter>\n</function>\n</seed:tool_call>\n")
_CLOSE, _CLOSE_AFTER_RETURNS = '\n\n    """', '\n    """'


def _py_type(spec: Any) -> str:
    kind = spec.get("type") if isinstance(spec, dict) else None
    return _PY_TYPES.get(kind, "Any") if isinstance(kind, str) else "Any"


def _description(spec: Any) -> str:
    return str(spec.get("description") or "") if isinstance(spec, dict) else ""


def _properties(spec: Any) -> dict[str, Any]:
    properties = spec.get("properties") if isinstance(spec, dict) else None
    return properties if isinstance(properties, dict) else {}


def _function(fn: dict[str, Any]) -> str:
    parameters = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {}
    properties, required = _properties(parameters), parameters.get("required") or []
    returns = _properties(fn.get("returns"))
    signature = ",".join(f"{name}: {_py_type(spec)}" for name, spec in properties.items())
    description = str(fn.get("description") or "").strip()
    text = f'\n\nFunction:\ndef {fn["name"]}({signature}):\n    """\n    {description}\n\n'
    if properties:
        text += "    Args:" + "".join(
            f"\n    - {name} ({_py_type(spec)}) {_REQUIRED if name in required else _OPTIONAL}: {_description(spec)}"
            for name, spec in properties.items())
    if returns:
        text += "\n    Returns:" + "".join(f"\n    - {name} ({_py_type(spec)}): {_description(spec)}"
                                          for name, spec in returns.items())
    return text + (_CLOSE_AFTER_RETURNS if returns else _CLOSE)


def _tools(tools: Tools) -> str:
    return "".join(_function(function_of(tool)) for tool in tools if tool.get("type", "function") == "function") + _TAIL


def _calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(
        f"<seed:tool_call>\n<function={call.name}>\n"
        # values as the template's `string` filter writes them: Python's str (a string bare)
        + "".join(f"<parameter={key}>{value}</parameter>\n" for key, value in call.arguments.items())
        + "</function>\n</seed:tool_call>" for call in calls)


_CALL = re.compile(r"<seed:tool_call>\s*<function=([^>\n]+)>\n?(.*?)</function>\s*</seed:tool_call>", re.DOTALL)
_PARAMETER = re.compile(r"<parameter=([^>\n]+)>(.*?)</parameter>", re.DOTALL)


def _value(raw: str) -> Any:
    """JSON, else a Python literal (the template writes `{'a': 1}`, `True`, `None`), else the string itself; the
    literal is read by Python's parser, never evaluated."""
    value = parse_xml_value(raw)
    if not isinstance(value, str):
        return value
    try:
        literal = ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw
    return raw if isinstance(literal, str) else literal


def _parse(text: str) -> list[ToolCall]:
    return [ToolCall(name.strip(), {key.strip(): _value(raw) for key, raw in _PARAMETER.findall(body)})
            for name, body in _CALL.findall(text)]


_MACROS = ("{%- macro lmforge_py_type(spec) -%}{%- set kind = spec.type if spec is mapping and spec.type is defined "
           "else none -%}{%- if kind == 'string' -%}str{%- elif kind in ['number', 'integer'] -%}int"
           "{%- elif kind == 'boolean' -%}bool{%- elif kind == 'array' -%}list{%- else -%}Any{%- endif -%}"
           "{%- endmacro -%}")
_PROPERTIES = "{0}.properties if {0} is mapping and {0}.properties is defined and {0}.properties is mapping else {{}}"
_JINJA_TOOLS = "".join([
    set_tools("''"),
    "{%- for tool in ns.tool_list if tool.type is not defined or tool.type == 'function' -%}",
    "{%- set fn = tool.function -%}",
    "{%- set params = fn.parameters if fn.parameters is defined and fn.parameters is mapping else {} -%}",
    "{%- set props = " + _PROPERTIES.format("params") + " -%}",
    "{%- set required = params.required if params.required is defined and params.required else [] -%}",
    "{%- set returns = " + _PROPERTIES.format("(fn.returns if fn.returns is defined else none)") + " -%}",
    append_tools("'\\n\\nFunction:\\ndef ' + fn.name + '('"),
    "{%- for name, spec in props.items() -%}"
    + append_tools("name + ': ' + lmforge_py_type(spec) + (',' if not loop.last else '')") + "{%- endfor -%}",
    append_tools("'):\\n    \"\"\"\\n    ' + ((fn.description if fn.description is defined and fn.description else '')"
                 " | string | trim) + '\\n\\n'"),
    "{%- if props -%}" + append_tools("'    Args:'") + "{%- for name, spec in props.items() -%}"
    + append_tools(f"'\\n    - ' + name + ' (' + lmforge_py_type(spec) + ') ' + ({q(_REQUIRED)} if name in required "
                   f"else {q(_OPTIONAL)}) + ': ' + ((spec.description if spec is mapping and spec.description else '')"
                   " | string)") + "{%- endfor -%}{%- endif -%}",
    "{%- if returns -%}" + append_tools("'\\n    Returns:'") + "{%- for name, spec in returns.items() -%}"
    + append_tools("'\\n    - ' + name + ' (' + lmforge_py_type(spec) + '): ' + ((spec.description if spec is "
                   "mapping and spec.description else '') | string)") + "{%- endfor -%}"
    + append_tools(q(_CLOSE_AFTER_RETURNS)) + "{%- else -%}" + append_tools(q(_CLOSE)) + "{%- endif -%}",
    "{%- endfor -%}",
    append_tools(q(_TAIL)),
])
_JINJA_CALL = (
    "{%- set ns.call = '<seed:tool_call>\\n<function=' + call.name + '>\\n' -%}"
    "{%- for key, value in (call.arguments if call.arguments is mapping else {}).items() -%}"
    "{%- set ns.call = ns.call + '<parameter=' + key + '>' + (value if value is string else value | string) "
    "+ '</parameter>\\n' -%}{%- endfor -%}"
    "{%- set ns.call = ns.call + '</function>\\n</seed:tool_call>' -%}"
)

# Go: `$p`'s Python-style type name (_py_type; a list of types prints as `[a b]`, which is `Any` as in Python)
_GO_PY_TYPE = "".join(
    [f'{{{{ {"if" if i == 0 else "else if"} eq (print $p.Type) "{kind}" }}}}{name}'
     for i, (kind, name) in enumerate(_PY_TYPES.items())] + ["{{ else }}Any{{ end }}"])
# Go: the definitions (_function per tool; Ollama carries no `returns`, so none is written)
_GO_TOOLS = (
    "{{ range $.Tools }}{{ $fn := .Function }}" + go.go_text("\n\nFunction:\ndef ") + "{{ $fn.Name }}("
    '{{ $sep := "" }}{{ range $name, $p := $fn.Parameters.Properties }}{{ $sep }}{{ $sep = "," }}{{ $name }}: '
    + _GO_PY_TYPE + "{{ end }}" + go.go_text('):\n    """\n    ') + "{{ $fn.Description }}\n\n"
    "{{ if $fn.Parameters.Properties }}    Args:{{ range $name, $p := $fn.Parameters.Properties }}"
    "{{ $required := false }}{{ range $fn.Parameters.Required }}{{ if eq . $name }}{{ $required = true }}{{ end }}"
    "{{ end }}\n    - {{ $name }} (" + _GO_PY_TYPE + ") {{ if $required }}" + _REQUIRED + "{{ else }}" + _OPTIONAL
    + "{{ end }}: {{ $p.Description }}{{ end }}{{ end }}" + go.go_text(_CLOSE) + "{{ end }}" + go.go_text(_TAIL))
# Go: one call; a value as the template's `string` filter writes it where Go can (strings bare, True / False)
_GO_CALL = (
    "<seed:tool_call>\n<function=" + go.NAME + ">\n{{ range $key, $value := .Function.Arguments }}"
    "<parameter={{ $key }}>"
    '{{ if eq (printf "%T" $value) "string" }}{{ $value }}{{ else if eq (printf "%T" $value) "bool" }}'
    "{{ if $value }}True{{ else }}False{{ end }}{{ else }}{{ json $value }}{{ end }}</parameter>\n{{ end }}"
    "</function>\n</seed:tool_call>")

register_tool_format(ToolFormat(
    "seed_oss", _tools, _calls, _parse, content_separator="\n\n", call_marker="<seed:tool_call>",
    call_words=("</seed:tool_call>",),
    description="Seed-OSS: `def NAME(...)` docstring definitions, `<seed:tool_call>` blocks of `<function=NAME>` "
                "with one `<parameter=KEY>` per argument",
    jinja=JinjaToolFormat(_JINJA_TOOLS, _JINJA_CALL, "\n", macros=_MACROS),
    ollama=OllamaToolFormat(
        _GO_TOOLS, _GO_CALL, "\n",
        limits="the definitions leave out `returns` (Ollama does not carry it) and keep descriptions untrimmed; an "
               "argument that is null, an object or a list is written as JSON where the template writes Python's "
               "`None`, dict or list")))
