"""Qwen3-Coder: tools listed as XML (`<function><name>...<parameters>`), calls as
`<tool_call><function=NAME><parameter=KEY>value</parameter></function></tool_call>` blocks."""

from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps, function_of
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, q, set_tools
from lmforge.data.templates.tool_formats.qwen import _xml_parse

# Python's spelling of the JSON constants, as the template writes non-string scalars (`value | string`)
_PYTHON_CONSTANTS = {"True": True, "False": False, "None": None}

_HEAD = "# Tools\n\nYou have access to the following functions:\n\n<tools>"
_TAIL = ("\n</tools>\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n"
         "<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n"
         "<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\n"
         "multiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n"
         "- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested "
         "within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional "
         "reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there "
         "is no function call available, answer the question like normal with your current knowledge and do not "
         "tell the user about function calls\n</IMPORTANT>")


def _text(value: Any) -> str:
    """A value as the template writes it: objects and lists as JSON, anything else as Python's str (jinja's)."""
    return dumps(value) if isinstance(value, dict | list | tuple) else str(value)


def _extra(spec: Any, handled: tuple[str, ...]) -> str:
    """The keys of `spec` the template has no tag of its own for, each as `<key>value</key>`."""
    if not isinstance(spec, dict):
        return ""
    return "".join(f"\n<{key}>{_text(value)}</{key}>" for key, value in spec.items() if key not in handled)


def _tools(tools: Tools) -> str:
    parts = [_HEAD]
    for tool in map(function_of, tools):
        parts.append(f"\n<function>\n<name>{tool['name']}</name>")
        if "description" in tool:
            parts.append(f"\n<description>{str(tool['description']).strip()}</description>")
        parts.append("\n<parameters>")
        parameters = tool.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, dict) else None
        for name, fields in (properties or {}).items() if isinstance(properties, dict) else ():
            parts.append(f"\n<parameter>\n<name>{name}</name>")
            if "type" in fields:
                parts.append(f"\n<type>{_text(fields['type'])}</type>")
            if "description" in fields:
                parts.append(f"\n<description>{str(fields['description']).strip()}</description>")
            parts.append(_extra(fields, ("name", "type", "description")) + "\n</parameter>")
        parts.append(_extra(parameters, ("type", "properties")) + "\n</parameters>")
        parts.append(_extra(tool, ("type", "name", "description", "parameters")) + "\n</function>")
    return "".join(parts) + _TAIL


def _calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(
        f"<tool_call>\n<function={call.name}>\n"
        + "".join(f"<parameter={key}>\n{_text(value)}\n</parameter>\n" for key, value in call.arguments.items())
        + "</function>\n</tool_call>" for call in calls)


def _parse(text: str) -> list[ToolCall]:
    return [ToolCall(call.name, {key: _PYTHON_CONSTANTS.get(value, value) if isinstance(value, str) else value
                                 for key, value in call.arguments.items()}) for call in _xml_parse(text)]


# jinja: `lmforge_text(v)` as _text, `lmforge_extra(spec, handled)` as _extra
_MACROS = (
    "{%- macro lmforge_text(v) -%}{%- if v is mapping or (v is sequence and v is not string) -%}{{- v | tojson -}}"
    "{%- else -%}{{- v | string -}}{%- endif -%}{%- endmacro -%}"
    "{%- macro lmforge_extra(spec, handled) -%}{%- if spec is mapping -%}{%- for key in spec if key not in handled -%}"
    "{{- '\\n<' + key + '>' + lmforge_text(spec[key]) + '</' + key + '>' -}}{%- endfor -%}{%- endif -%}"
    "{%- endmacro -%}"
)
_JINJA_TOOLS = "".join([
    set_tools(q(_HEAD)),
    "{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}",
    append_tools("'\\n<function>\\n<name>' + fn.name + '</name>'"),
    "{%- if fn.description is defined -%}"
    + append_tools("'\\n<description>' + (fn.description | string | trim) + '</description>'") + "{%- endif -%}",
    append_tools("'\\n<parameters>'"),
    "{%- set params = fn.parameters if fn.parameters is defined else none -%}",
    "{%- if params is mapping and params.properties is defined and params.properties is mapping -%}"
    "{%- for name, fields in params.properties.items() -%}",
    append_tools("'\\n<parameter>\\n<name>' + name + '</name>'"),
    "{%- if fields.type is defined -%}" + append_tools("'\\n<type>' + lmforge_text(fields.type) + '</type>'")
    + "{%- endif -%}",
    "{%- if fields.description is defined -%}"
    + append_tools("'\\n<description>' + (fields.description | string | trim) + '</description>'") + "{%- endif -%}",
    append_tools("lmforge_extra(fields, ['name', 'type', 'description']) + '\\n</parameter>'"),
    "{%- endfor -%}{%- endif -%}",
    append_tools("lmforge_extra(params, ['type', 'properties']) + '\\n</parameters>'"),
    append_tools("lmforge_extra(fn, ['type', 'name', 'description', 'parameters']) + '\\n</function>'"),
    "{%- endfor -%}",
    append_tools(q(_TAIL)),
])
_JINJA_CALL = (
    "{%- set ns.call = '<tool_call>\\n<function=' + call.name + '>\\n' -%}"
    "{%- for key, value in (call.arguments if call.arguments is mapping else {}).items() -%}"
    "{%- set ns.call = ns.call + '<parameter=' + key + '>\\n' + (value if value is string else lmforge_text(value)) "
    "+ '\\n</parameter>\\n' -%}{%- endfor -%}"
    "{%- set ns.call = ns.call + '</function>\\n</tool_call>' -%}"
)

# Go: a value as _text writes it where Go can: strings as they are, True / False / None as Python's, else JSON
_GO_CALL = (
    f"<tool_call>\n<function={go.NAME}>\n{{{{ range $key, $value := .Function.Arguments }}}}"
    "<parameter={{ $key }}>\n"
    '{{ if eq (printf "%T" $value) "string" }}{{ $value }}{{ else if eq (printf "%T" $value) "bool" }}'
    '{{ if $value }}True{{ else }}False{{ end }}{{ else if eq (printf "%T" $value) "<nil>" }}None'
    "{{ else }}{{ json $value }}{{ end }}\n</parameter>\n{{ end }}</function>\n</tool_call>")


def _go_extra(spec: str, keys: tuple[tuple[str, str], ...]) -> str:
    """Go: the fields of Ollama's `spec` (its JSON key, its Go field) that _extra writes, in Ollama's order."""
    return "".join(f"{{{{ if {spec}.{field} }}}}\n<{key}>{{{{ json {spec}.{field} }}}}</{key}>{{{{ end }}}}"
                   for key, field in keys)


# Go: the definitions (_tools), from what Ollama carries of a tool
_GO_TOOLS = (
    go.go_text(_HEAD) + "{{ range $.Tools }}{{ $fn := .Function }}\n<function>\n<name>{{ $fn.Name }}</name>"
    "{{ if $fn.Description }}\n<description>{{ $fn.Description }}</description>{{ end }}\n<parameters>"
    "{{ range $name, $p := $fn.Parameters.Properties }}\n<parameter>\n<name>{{ $name }}</name>"
    "{{ if $p.Type }}\n<type>{{ if eq (len $p.Type) 1 }}{{ $p.Type }}{{ else }}{{ json $p.Type }}{{ end }}</type>"
    "{{ end }}{{ if $p.Description }}\n<description>{{ $p.Description }}</description>{{ end }}"
    + _go_extra("$p", (("anyOf", "AnyOf"), ("items", "Items"), ("enum", "Enum"), ("properties", "Properties"),
                       ("required", "Required")))
    + "\n</parameter>{{ end }}"
    + _go_extra("$fn.Parameters", (("$defs", "Defs"), ("items", "Items"), ("required", "Required")))
    + "\n</parameters>\n</function>{{ end }}" + go.go_text(_TAIL))

register_tool_format(ToolFormat(
    "qwen3_coder", _tools, _calls, _parse, content_separator="\n\n", call_marker="<tool_call>",
    call_words=("</tool_call>",),
    description="Qwen3-Coder: XML tool definitions, `<function=NAME>` calls with one `<parameter=KEY>` per argument",
    jinja=JinjaToolFormat(_JINJA_TOOLS, _JINJA_CALL, "\n", macros=_MACROS),
    ollama=OllamaToolFormat(
        _GO_TOOLS, _GO_CALL, "\n",
        limits="the definitions keep only the fields Ollama carries (a parameter's `anyOf`, `items`, `enum`, "
               "`properties`, `required`; the parameters' `$defs`, `items`, `required`), in that order, leave out "
               "empty descriptions and keep them untrimmed")))

# Qwen3.5 / 3.6: Qwen3-Coder's calls, the definitions as JSON lines in <tools> with the same instructions
_QWEN35_HEAD = "# Tools\n\nYou have access to the following functions:\n\n<tools>"
_QWEN35_TAIL = "\n</tools>" + _TAIL.removeprefix("\n</tools>")


def _qwen35_tools(tools: Tools) -> str:
    return _QWEN35_HEAD + "".join("\n" + dumps(tool) for tool in tools) + _QWEN35_TAIL


register_tool_format(ToolFormat(
    "qwen3_5", _qwen35_tools, _calls, _parse, content_separator="\n\n", call_marker="<tool_call>",
    call_words=("</tool_call>",),
    description="Qwen3.5 / 3.6: Qwen3-Coder's calls, JSON definitions in `<tools>`",
    jinja=JinjaToolFormat(set_tools(q(_QWEN35_HEAD)) + "{%- for tool in ns.tool_list -%}"
                          + append_tools("'\\n' + tool | tojson") + "{%- endfor -%}" + append_tools(q(_QWEN35_TAIL)),
                          _JINJA_CALL, "\n", macros=_MACROS),
    ollama=OllamaToolFormat(go.go_text(_QWEN35_HEAD) + go.EACH_TOOL_ON_A_LINE + go.go_text(_QWEN35_TAIL),
                            _GO_CALL, "\n")))
