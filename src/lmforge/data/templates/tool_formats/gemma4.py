"""Gemma 4: `<|tool_call>call:NAME{key:VALUE,...}<tool_call|>` calls back to back, values in Gemma's own notation
(strings between `<|"|>` quotes, bare keys, keys sorted); definitions as `<|tool>declaration:NAME{...}<tool|>` in the
system turn, the JSON schema written in that notation (properties sorted, types upper-cased)."""

import json
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, function_of
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat, go_text
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, set_tools
from lmforge.errors import TemplateError

Q = '<|"|>'  # Gemma 4's string quote
_STANDARD_KEYS = ("description", "type", "properties", "required", "nullable")


def value_text(value: Any, escape_keys: bool = True) -> str:
    """A value in Gemma's notation (its template's `format_argument`)."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return Q + value + Q
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ",".join((Q + key + Q if escape_keys else key) + ":" + value_text(item, escape_keys)
                              for key, item in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(value_text(item, escape_keys) for item in value) + "]"
    return str(value)


def _quoted_list(items: Any) -> str:
    return "[" + ",".join(Q + str(item) + Q for item in items) + "]"


def _upper(value: Any) -> str:
    return "" if value is None else str(value).upper()


def _items(items: dict[str, Any]) -> str:
    parts = []
    for key, item in sorted(items.items()):
        if item is None:
            continue
        if key == "properties":
            parts.append("properties:{" + (_parameters(item) if isinstance(item, dict) else "") + "}")
        elif key == "required":
            parts.append("required:" + _quoted_list(item))
        elif key == "type":
            parts.append("type:" + value_text(item.upper() if isinstance(item, str) else [_upper(t) for t in item]))
        else:
            parts.append(f"{key}:{value_text(item)}")
    return "items:{" + ",".join(parts) + "}"


def _parameters(properties: dict[str, Any], filter_keys: bool = False) -> str:
    """The properties of a schema (its template's `format_parameters`)."""
    parts = []
    for key, spec in sorted(properties.items()):
        if filter_keys and key in _STANDARD_KEYS:
            continue
        spec = spec if isinstance(spec, dict) else {}
        kind, fields = _upper(spec.get("type")), []
        if spec.get("description"):
            fields.append(f"description:{Q}{spec['description']}{Q}")
        if kind == "STRING" and spec.get("enum"):
            fields.append("enum:" + value_text(spec["enum"]))
        elif kind == "ARRAY" and isinstance(spec.get("items"), dict) and spec["items"]:
            fields.append(_items(spec["items"]))
        if spec.get("nullable"):
            fields.append("nullable:true")
        if kind == "OBJECT":
            nested = spec.get("properties")
            fields.append("properties:{" + (_parameters(nested) if isinstance(nested, dict)
                                            else _parameters(spec, filter_keys=True)) + "}")
            if spec.get("required"):
                fields.append("required:" + _quoted_list(spec["required"]))
        fields.append(f"type:{Q}{kind}{Q}")
        parts.append(key + ":{" + ",".join(fields) + "}")
    return ",".join(parts)


def _declaration(fn: dict[str, Any]) -> str:
    text = f"declaration:{fn['name']}{{description:{Q}{fn.get('description') or ''}{Q}"
    params = fn.get("parameters")
    if params:
        text += ",parameters:{"
        if params.get("properties"):
            text += "properties:{" + _parameters(params["properties"]) + "},"
        if params.get("required"):
            text += "required:" + _quoted_list(params["required"]) + ","
        if params.get("type"):
            text += f"type:{Q}{_upper(params['type'])}{Q}}}"
    return (text + "}").strip()


def _tools(tools: Tools) -> str:
    return "".join(f"<|tool>{_declaration(function_of(tool))}<tool|>" for tool in tools)


def _calls(calls: tuple[ToolCall, ...]) -> str:
    return "".join(f"<|tool_call>call:{call.name}{value_text(call.arguments, escape_keys=False)}<tool_call|>"
                   for call in calls)


class _Reader:
    """Reads values in Gemma's notation back (strings, bare or quoted keys, lists, JSON scalars)."""

    def __init__(self, text: str) -> None:
        self.text, self.at = text, 0

    def value(self) -> Any:
        text = self.text
        if text.startswith(Q, self.at):
            start = self.at + len(Q)
            end = text.find(Q, start)
            if end < 0:
                raise TemplateError(f"a Gemma 4 tool call has an unclosed string: {text[self.at:self.at + 200]}")
            self.at = end + len(Q)
            return text[start:end]
        if text.startswith("{", self.at):
            return self.container("}", keyed=True)
        if text.startswith("[", self.at):
            return self.container("]", keyed=False)
        end = self.at
        while end < len(text) and text[end] not in ",}]":
            end += 1
        raw, self.at = text[self.at:end], end
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw

    def container(self, close: str, keyed: bool) -> Any:
        self.at += 1
        out: Any = {} if keyed else []
        while self.at < len(self.text) and self.text[self.at] != close:
            before = self.at
            if keyed:
                if self.text.startswith(Q, self.at):
                    key = self.value()
                    self.at += 1  # the colon
                else:
                    colon = self.text.find(":", self.at)
                    if colon < 0:
                        raise self.malformed()
                    key, self.at = self.text[self.at:colon], colon + 1
                out[key] = self.value()
            else:
                out.append(self.value())
            if self.at < len(self.text) and self.text[self.at] == ",":
                self.at += 1
            if self.at == before:  # a closing bracket of the other kind: nothing more can be read
                raise self.malformed()
        self.at += 1
        return out

    def malformed(self) -> TemplateError:
        return TemplateError(f"a Gemma 4 tool call is malformed at: {self.text[self.at:self.at + 200]}")


def _parse(text: str) -> list[ToolCall]:
    calls = []
    for block in text.split("<|tool_call>call:")[1:]:
        name, brace, _ = block.partition("{")
        if not brace:
            raise TemplateError(f"a Gemma 4 tool call has no arguments: {block[:200]}")
        reader = _Reader(block)
        reader.at = len(name)
        arguments = reader.value()
        calls.append(ToolCall(name.strip(), arguments if isinstance(arguments, dict) else {}))
    return calls


# jinja: the same notation as macros (lmforge_g4_value = value_text, lmforge_g4_params = _parameters, ...)
_MACROS = "".join([
    "{%- macro lmforge_g4_value(v, escape_keys=true) -%}{%- if v is none -%}{{- 'null' -}}"
    "{%- elif v is string -%}{{- '<|\"|>' + v + '<|\"|>' -}}"
    "{%- elif v is boolean -%}{{- 'true' if v else 'false' -}}"
    "{%- elif v is mapping -%}{{- '{' -}}{%- for k, x in v | dictsort -%}{{- ',' if not loop.first else '' -}}"
    "{{- ('<|\"|>' + k + '<|\"|>') if escape_keys else k -}}{{- ':' + lmforge_g4_value(x, escape_keys) -}}"
    "{%- endfor -%}{{- '}' -}}"
    "{%- elif v is iterable -%}{{- '[' -}}{%- for x in v -%}{{- ',' if not loop.first else '' -}}"
    "{{- lmforge_g4_value(x, escape_keys) -}}{%- endfor -%}{{- ']' -}}"
    "{%- else -%}{{- v -}}{%- endif -%}{%- endmacro -%}",
    "{%- macro lmforge_g4_quoted(xs) -%}{{- '[' -}}{%- for x in xs -%}{{- ',' if not loop.first else '' -}}"
    "{{- '<|\"|>' + (x | string) + '<|\"|>' -}}{%- endfor -%}{{- ']' -}}{%- endmacro -%}",
    "{%- macro lmforge_g4_items(items) -%}{%- set ns_i = namespace(parts=[]) -%}"
    "{%- for k, x in items | dictsort -%}{%- if x is not none -%}"
    "{%- if k == 'properties' -%}{%- set ns_i.parts = ns_i.parts + ['properties:{' + (lmforge_g4_params(x) "
    "if x is mapping else '') + '}'] -%}"
    "{%- elif k == 'required' -%}{%- set ns_i.parts = ns_i.parts + ['required:' + lmforge_g4_quoted(x)] -%}"
    "{%- elif k == 'type' -%}{%- set ns_i.parts = ns_i.parts + ['type:' + lmforge_g4_value((x | upper) if x is "
    "string else (x | map('string') | map('upper') | list))] -%}"
    "{%- else -%}{%- set ns_i.parts = ns_i.parts + [k + ':' + lmforge_g4_value(x)] -%}{%- endif -%}"
    "{%- endif -%}{%- endfor -%}{{- 'items:{' + ns_i.parts | join(',') + '}' -}}{%- endmacro -%}",
    "{%- macro lmforge_g4_params(props, filter_keys=false) -%}{%- set ns_p = namespace(parts=[]) -%}"
    "{%- for key, raw in props | dictsort -%}"
    "{%- if not filter_keys or key not in ['description', 'type', 'properties', 'required', 'nullable'] -%}"
    "{%- set spec = raw if raw is mapping else {} -%}"
    "{%- set kind = (spec['type'] | string | upper) if spec['type'] is defined and spec['type'] is not none "
    "else '' -%}{%- set ns_f = namespace(parts=[]) -%}"
    "{%- if spec['description'] -%}{%- set ns_f.parts = ns_f.parts + ['description:<|\"|>' + "
    "(spec['description'] | string) + '<|\"|>'] -%}{%- endif -%}"
    "{%- if kind == 'STRING' and spec['enum'] -%}{%- set ns_f.parts = ns_f.parts + ['enum:' + "
    "lmforge_g4_value(spec['enum'])] -%}"
    "{%- elif kind == 'ARRAY' and spec['items'] is mapping and spec['items'] -%}"
    "{%- set ns_f.parts = ns_f.parts + [lmforge_g4_items(spec['items'])] -%}{%- endif -%}"
    "{%- if spec['nullable'] -%}{%- set ns_f.parts = ns_f.parts + ['nullable:true'] -%}{%- endif -%}"
    "{%- if kind == 'OBJECT' -%}{%- set ns_f.parts = ns_f.parts + ['properties:{' + (lmforge_g4_params("
    "spec['properties']) if spec['properties'] is mapping else lmforge_g4_params(spec, true)) + '}'] -%}"
    "{%- if spec['required'] -%}{%- set ns_f.parts = ns_f.parts + ['required:' + lmforge_g4_quoted("
    "spec['required'])] -%}{%- endif -%}{%- endif -%}"
    "{%- set ns_f.parts = ns_f.parts + ['type:<|\"|>' + kind + '<|\"|>'] -%}"
    "{%- set ns_p.parts = ns_p.parts + [key + ':{' + ns_f.parts | join(',') + '}'] -%}"
    "{%- endif -%}{%- endfor -%}{{- ns_p.parts | join(',') -}}{%- endmacro -%}",
    "{%- macro lmforge_g4_declaration(fn) -%}{%- set ns_d = namespace(text='declaration:' + fn.name + "
    "'{description:<|\"|>' + ((fn.description | string) if fn.description else '') + '<|\"|>') -%}"
    "{%- set params = fn.parameters if fn.parameters is defined else none -%}{%- if params -%}"
    "{%- set ns_d.text = ns_d.text + ',parameters:{' -%}"
    "{%- if params['properties'] -%}{%- set ns_d.text = ns_d.text + 'properties:{' + lmforge_g4_params("
    "params['properties']) + '},' -%}{%- endif -%}"
    "{%- if params['required'] -%}{%- set ns_d.text = ns_d.text + 'required:' + lmforge_g4_quoted("
    "params['required']) + ',' -%}{%- endif -%}"
    "{%- if params['type'] -%}{%- set ns_d.text = ns_d.text + 'type:<|\"|>' + (params['type'] | string | upper) "
    "+ '<|\"|>}' -%}{%- endif -%}{%- endif -%}{{- (ns_d.text + '}') | trim -}}{%- endmacro -%}",
])
_JINJA_TOOLS = (set_tools("''") + "{%- for tool in ns.tool_list -%}"
                + append_tools("'<|tool>' + lmforge_g4_declaration(tool.function) + '<tool|>'") + "{%- endfor -%}")
_JINJA_CALL = ("{%- set ns.call = '<|tool_call>call:' + call.name + lmforge_g4_value(call.arguments if call.arguments "
               "is mapping else {}, false) + '<tool_call|>' -%}")

# Go (Ollama has no upper-case function): a JSON-schema type name upper-cased, others as they are
_SCHEMA_TYPES = ("string", "number", "integer", "boolean", "array", "object", "null")


def _go_upper(value: str) -> str:
    return "".join(f'{{{{ {"if" if i == 0 else "else if"} eq {value} "{kind}" }}}}{kind.upper()}'
                   for i, kind in enumerate(_SCHEMA_TYPES)) + "{{ else }}{{ " + value + " }}{{ end }}"


def _go_quoted_list(value: str) -> str:
    return "[{{ range $j, $x := " + value + " }}{{ if $j }},{{ end }}" + Q + "{{ $x }}" + Q + "{{ end }}]"


# `$v` in Gemma's notation where Go can write it (a string quoted; anything else as JSON)
_GO_VALUE = '{{ if eq (printf "%T" $v) "string" }}' + Q + "{{ $v }}" + Q + "{{ else }}{{ json $v }}{{ end }}"
# an array's `items` (_items): its type upper-cased, `required` quoted, other keys as values
_GO_ITEMS = (go_text("items:{") + '{{ $isep := "" }}{{ range $k, $v := $p.Items }}{{ $isep }}{{ $isep = "," }}'
             '{{ if eq $k "type" }}type:' + Q + _go_upper("(print $v)") + Q
             + '{{ else if eq $k "required" }}required:' + _go_quoted_list("$v")
             + "{{ else }}{{ $k }}:" + _GO_VALUE + "{{ end }}{{ end }}},")
# one property (_parameters' fields; a nested object's properties and `nullable` are not carried)
_GO_PROPERTY = (
    "{{ $t := print $p.Type }}{{ $name }}:" + go_text("{")
    + "{{ if $p.Description }}description:" + Q + "{{ $p.Description }}" + Q + ",{{ end }}"
    + '{{ if and (eq $t "string") $p.Enum }}enum:' + _go_quoted_list("$p.Enum") + ","
    + '{{ else if and (eq $t "array") $p.Items }}' + _GO_ITEMS + "{{ end }}"
    + "type:" + Q + _go_upper("$t") + Q + "}")
_GO_TOOLS = (
    "{{ range $.Tools }}{{ $fn := .Function }}<|tool>declaration:{{ $fn.Name }}" + go_text("{")
    + "description:" + Q + "{{ $fn.Description }}" + Q
    + "{{ if or $fn.Parameters.Type $fn.Parameters.Properties $fn.Parameters.Required }}" + go_text(",parameters:{")
    + "{{ if $fn.Parameters.Properties }}" + go_text("properties:{")
    + '{{ $sep := "" }}{{ range $name, $p := $fn.Parameters.Properties }}{{ $sep }}{{ $sep = "," }}' + _GO_PROPERTY
    + "{{ end }}},{{ end }}"
    + "{{ if $fn.Parameters.Required }}required:" + _go_quoted_list("$fn.Parameters.Required") + ",{{ end }}"
    + "{{ if $fn.Parameters.Type }}type:" + Q + _go_upper("$fn.Parameters.Type") + Q + "}{{ end }}"
    + "{{ end }}}<tool|>{{ end }}")
_GO_CALL = ("<|tool_call>call:{{ .Function.Name }}" + go_text("{")
            + '{{ $sep := "" }}{{ range $k, $v := .Function.Arguments }}{{ $sep }}{{ $sep = "," }}{{ $k }}:'
            + _GO_VALUE + "{{ end }}}<tool_call|>")

register_tool_format(ToolFormat(
    "gemma4", _tools, _calls, _parse, content_separator="", call_marker="<|tool_call>",
    call_words=("<tool_call|>", "<|tool_response>", "<tool_response|>", Q),
    description="Gemma 4: `<|tool_call>call:NAME{key:VALUE}<tool_call|>` in Gemma's value notation; definitions as "
                "`<|tool>declaration:...<tool|>`",
    jinja=JinjaToolFormat(_JINJA_TOOLS, _JINJA_CALL, macros=_MACROS),
    ollama=OllamaToolFormat(
        _GO_TOOLS, _GO_CALL,
        limits="a call's result names its tool from the request's `tool_name` (Ollama's chat API field; without it "
               "the name is empty); an argument or `items` value that is an object or a list is written as JSON, "
               "and a nested object's properties and `nullable` are left out of the definitions (Ollama's "
               "template language cannot recurse into Gemma's notation, nor does it carry `nullable`)")))
