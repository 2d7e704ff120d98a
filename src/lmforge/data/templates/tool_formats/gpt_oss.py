"""gpt-oss (Harmony): calls as commentary-channel messages to `functions.NAME` (see `harmony.py`, which
writes both the Python rendering and its jinja; the Go pieces for Ollama are here).

Ollama hands a template each tool parameter's `type`, `description`, `enum`, `items`, `anyOf`, `required` and
`properties`, the nested ones behind a pointer a template cannot range over; `typescript_type` recurses into
objects and arrays and reads `oneOf`, `nullable` and `default`, which Go writes where Ollama's data allows (the
Modelfile's limits say where not).
"""

from lmforge.data.templates import harmony
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat

# Go: `$p`'s type as typescript_type writes it, for what Ollama carries
_GO_ARRAY = (
    '{{ $item := "" }}{{ with $p.Items }}{{ with index . "type" }}{{ $item = print . }}{{ end }}{{ end }}'
    "{{ if not $p.Items }}any[]"
    + "".join(f'{{{{ else if eq $item "{kind}" }}}}{written}' for kind, written in harmony.ARRAY_ITEMS.items())
    + '{{ else if and (eq $item "object") (not (index $p.Items "properties")) }}object[]{{ else }}any[]{{ end }}')
_GO_TYPE = (
    '{{ $kind := print $p.Type }}{{ if gt (len $p.Type) 1 }}{{ range $j, $t := $p.Type }}{{ if $j }} | {{ end }}'
    '{{ $t }}{{ end }}{{ else if eq $kind "array" }}' + _GO_ARRAY
    + '{{ else if eq $kind "string" }}{{ if $p.Enum }}"{{ range $j, $e := $p.Enum }}{{ if $j }}" | "{{ end }}'
    '{{ $e }}{{ end }}"{{ else }}string{{ end }}{{ else if eq $kind "number" "integer" }}number'
    '{{ else if eq $kind "boolean" }}boolean{{ else if eq $kind "object" }}object{{ else }}any{{ end }}')
# Go: the `functions` namespace (harmony.render_tools)
_GO_TOOLS = (
    "## functions\n\nnamespace functions {\n\n{{ range $.Tools }}{{ $fn := .Function }}// {{ $fn.Description }}\n"
    "type {{ $fn.Name }} = {{ if $fn.Parameters.Properties }}(_: {{ \"{\" }}\n"
    "{{ range $name, $p := $fn.Parameters.Properties }}{{ if $p.Description }}// {{ $p.Description }}\n{{ end }}"
    "{{ $required := false }}{{ range $fn.Parameters.Required }}{{ if eq . $name }}{{ $required = true }}{{ end }}"
    "{{ end }}{{ $name }}{{ if not $required }}?{{ end }}: " + _GO_TYPE + ",\n{{ end }}}) => any;\n\n"
    "{{ else }}() => any;\n\n{{ end }}{{ end }}} // namespace functions")

register_tool_format(ToolFormat(
    "gpt_oss", harmony.render_tools, harmony.render_calls, harmony.parse_calls,
    render_answer=harmony.render_answer, description=harmony.DESCRIPTION,
    jinja=JinjaToolFormat(harmony.JINJA_DEFINITIONS, harmony.JINJA_CALL, harmony.JINJA_SEPARATOR,
                          answer=harmony.JINJA_ANSWER, macros=harmony.JINJA_MACROS),
    ollama=OllamaToolFormat(
        _GO_TOOLS, f" to=functions.{go.NAME}<|channel|>commentary json<|message|>{go.ARGUMENTS}<|call|>",
        harmony.JINJA_SEPARATOR, answer=(harmony.ANALYSIS, harmony.NEXT_MESSAGE), answer_with_text_only=True,
        limits="a parameter's type leaves out what Ollama does not carry (`oneOf`, `nullable`, `default`) and "
               "what Go cannot recurse into: an object's properties (typed `object`) and arrays of anything but "
               "strings, numbers, booleans or plain objects (typed `any[]`)")))
