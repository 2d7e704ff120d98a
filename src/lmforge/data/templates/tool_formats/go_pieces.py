"""A tool format's pieces of an Ollama Go template, for Modelfiles, and the helpers formats write them with.

Ollama renders a Modelfile's TEMPLATE with Go's text/template over `.System`, `.Messages` (each with
`.Role`, `.Content`, `.Thinking`, `.ToolCalls`, `.ToolCallID`) and `.Tools` (each `.Function` with
`.Name`, `.Description`, `.Parameters`); a call has `.ID` and `.Function` with `.Name` and `.Arguments`.
Functions: Go's builtins (`eq`, `len`, `index`, `printf`, ...) and Ollama's `json` (Go's encoding/json).

A format's `OllamaToolFormat` holds the definitions (what `render_tools` writes, from `$.Tools`), one call
(`.` is the call), what joins and surrounds the calls (`.` is the message), and how an answer's text and
its calls combine; modelfile.py places them (through ollama_tools.py). `limits` says what Ollama's data
cannot reproduce exactly; the Modelfile states it in a comment.
"""

from dataclasses import dataclass


def go_text(text: str) -> str:
    """Literal text for a Go template: `{{` written as an action, and a trailing `{` too (it would open one
    with the action that follows); three double quotes as an action too (they would end the Modelfile's quoted
    TEMPLATE)."""
    out = text.replace("{{", '{{ "{{" }}').replace('"""', '{{ "\\"\\"\\"" }}')
    return out[:-1] + '{{ "{" }}' if out.endswith("{") else out


@dataclass(frozen=True)
class OllamaToolFormat:
    definitions: str  # Go: the tool definitions, from `$.Tools`
    call: str  # Go: one call (`.` is the call)
    separator: str = ""  # Go: between two calls
    prefix: str = ""  # Go: before an answer's calls (`.` is the message)
    suffix: str = ""  # Go: after them
    # (before, between): the answer is before + text + between + calls, also without text; None: the text,
    # the format's content_separator and the calls (text and separator only when there is text)
    answer: tuple[str, str] | None = None
    answer_with_text_only: bool = False  # `answer`'s before + text + between only where the answer has text
    limits: str = ""  # what the Modelfile cannot reproduce exactly


NAME = "{{ .Function.Name }}"
# a call's arguments as JSON (Ollama gives a call without arguments a nil map, which `json` writes as null)
ARGUMENTS = "{{ if .Function.Arguments }}{{ json .Function.Arguments }}{{ else }}{}{{ end }}"
NAME_ARGUMENTS = '{"name": "' + NAME + '", "arguments": ' + ARGUMENTS + "}"
NAME_PARAMETERS = '{"name": "' + NAME + '", "parameters": ' + ARGUMENTS + "}"
# `$value`, an argument: a string as it is, anything else as JSON
STRING_OR_JSON = '{{ if eq (printf "%T" $value) "string" }}{{ $value }}{{ else }}{{ json $value }}{{ end }}'
EACH_TOOL_ON_A_LINE = "{{ range $.Tools }}\n{{ json . }}{{ end }}"
EACH_FUNCTION = "{{ range $k, $t := $.Tools }}{{ if $k }}, {{ end }}{{ json $t.Function }}{{ end }}"
MORE_THAN_ONE = "{{ if gt (len .ToolCalls) 1 }}"
INDENTED = "the definitions' JSON is compact where lmforge indents it by 4 spaces"
CALL_IDS = ("call ids are the request's (`id` of each call, `tool_call_id` of each result): where a client "
            "sends none, Ollama writes empty ids where lmforge writes generated ones")
