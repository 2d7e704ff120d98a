"""Every tool format written as pieces of an Ollama Go template, for Modelfiles (modelfile.py).

Ollama renders a Modelfile's TEMPLATE with Go's text/template over `.System`, `.Messages` (each with
`.Role`, `.Content`, `.Thinking`, `.ToolCalls`, `.ToolCallID`) and `.Tools` (each `.Function` with
`.Name`, `.Description`, `.Parameters`); a call has `.ID` and `.Function` with `.Name` and `.Arguments`.
Functions: Go's builtins (`eq`, `len`, `index`, `printf`, ...) and Ollama's `json` (Go's encoding/json).

For each format of tool_formats.py: the definitions (what `render_tools` writes, from `$.Tools`), one call
(`.` is the call), what joins and surrounds the calls (`.` is the message), and how an answer's text and
its calls combine. Tool results are template slots (`format_observation_item`), written by modelfile.py.
`limits` says what Ollama's data cannot reproduce exactly; the Modelfile states it in a comment.
tests/data/test_templates_ollama.py evaluates the Modelfiles on conversations with tools, calls and
results and compares them with lmforge's own rendering.
"""

from dataclasses import dataclass


def go_text(text: str) -> str:
    """Literal text for a Go template: `{{` written as an action, and a trailing `{` too (it would open one
    with the action that follows)."""
    out = text.replace("{{", '{{ "{{" }}')
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
    limits: str = ""  # what the Modelfile cannot reproduce exactly


NAME = "{{ .Function.Name }}"
# a call's arguments as JSON (Ollama gives a call without arguments a nil map, which `json` writes as null)
ARGUMENTS = "{{ if .Function.Arguments }}{{ json .Function.Arguments }}{{ else }}{}{{ end }}"
NAME_ARGUMENTS = '{"name": "' + NAME + '", "arguments": ' + ARGUMENTS + "}"
NAME_PARAMETERS = '{"name": "' + NAME + '", "parameters": ' + ARGUMENTS + "}"
EACH_TOOL_ON_A_LINE = "{{ range $.Tools }}\n{{ json . }}{{ end }}"
EACH_FUNCTION = "{{ range $k, $t := $.Tools }}{{ if $k }}, {{ end }}{{ json $t.Function }}{{ end }}"
MORE_THAN_ONE = "{{ if gt (len .ToolCalls) 1 }}"
INDENTED = "the definitions' JSON is compact where lmforge indents it by 4 spaces"
CALL_IDS = ("call ids are the request's (`id` of each call, `tool_call_id` of each result): where a client "
            "sends none, Ollama writes empty ids where lmforge writes generated ones")

_QWEN = OllamaToolFormat(
    go_text("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
            "with function signatures within <tools></tools> XML tags:\n<tools>") + EACH_TOOL_ON_A_LINE
    + go_text('\n</tools>\n\nFor each function call, return a json object with function name and arguments '
              'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
              "<args-json-object>}\n</tool_call>"),
    "<tool_call>\n" + NAME_ARGUMENTS + "\n</tool_call>", "\n")

_REACT_TOOLS = (
    "You can use these tools:{{ range $t := $.Tools }}\n> Tool Name: {{ $t.Function.Name }}\nTool Description: "
    "{{ $t.Function.Description }}{{ if $t.Function.Parameters.Properties }}\nTool Args:{{ end }}"
    "{{ range $arg, $p := $t.Function.Parameters.Properties }}\n  - {{ $arg }} ({{ if $p.Type }}{{ $p.Type }}"
    "{{ else }}any{{ end }}{{ range $t.Function.Parameters.Required }}{{ if eq . $arg }}, required{{ end }}"
    "{{ end }}): {{ $p.Description }}{{ end }}\n{{ end }}\nTo use a tool, answer in this format:\n```\n"
    "Action: the tool name, one of [{{ range $k, $t := $.Tools }}{{ if $k }}, {{ end }}{{ $t.Function.Name }}"
    "{{ end }}]\nAction Input: the tool's arguments as one JSON object\n```\n")

_LLAMA3_TOOLS = go_text(
    "Given the following functions, please respond with a JSON for a function call with its proper arguments "
    'that best answers the given prompt.\n\nRespond in the format {"name": function name, "parameters": '
    "dictionary of argument name and its value}.Do not use variables.\n\n"
) + "{{ range $.Tools }}{{ json . }}\n\n{{ end }}"

# Hermes' Python-style type name of `$p`, a parameter (tool_formats._python_type)
_PYTHON_TYPE = "".join(
    [f'{{{{ {"if" if i == 0 else "else if"} eq (print $p.Type) "{kind}" }}}}{name}'
     for i, (kind, name) in enumerate([("string", "str"), ("number", "float"), ("integer", "int"),
                                       ("boolean", "bool"), ("array", "list[Union[]]"), ("object", "dict")])]
    + ["{{ else }}Union[]{{ end }}"])
_HERMES3_TOOLS = (
    '{{ range $k, $t := $.Tools }}{{ if $k }}\n{{ end }}{"type": "function", "function": {"name": '
    '"{{ $t.Function.Name }}", "description": "{{ $t.Function.Name }}({{ $sep := "" }}'
    "{{ range $arg, $p := $t.Function.Parameters.Properties }}{{ $sep }}{{ $sep = \", \" }}{{ $arg }}: "
    + _PYTHON_TYPE + "{{ end }}) - {{ $t.Function.Description }}\n\n{{ if $t.Function.Parameters.Properties }}"
    "    Args:\n{{ range $arg, $p := $t.Function.Parameters.Properties }}        {{ $arg }}(" + _PYTHON_TYPE
    + '): {{ $p.Description }}{{ end }}{{ end }}", "parameters": {{ if $t.Function.Parameters.Properties }}'
    "{{ json $t.Function.Parameters }}{{ else }}{}{{ end }}}{{ end }}")  # one brace short, as Hermes' own

_XML_CALL = (
    "<tool_call>\n<function={{ .Function.Name }}>\n{{ range $key, $value := .Function.Arguments }}"
    '<parameter={{ $key }}>\n{{ if eq (printf "%T" $value) "string" }}{{ $value }}{{ else }}{{ json $value }}'
    "{{ end }}\n</parameter>\n{{ end }}</function>\n</tool_call>")

_NEMOTRON_TOOLS = (
    go_text("You can use the following tools to assist the user if required:\n<AVAILABLE_TOOLS>[") + EACH_FUNCTION
    + go_text(']</AVAILABLE_TOOLS>\n\nIf you decide to call any tool(s), use the following format:\n<TOOLCALL>['
              '{{"name": "tool_name1", "arguments": "tool_args1"}}, {{"name": "tool_name2", "arguments": '
              '"tool_args2"}}]</TOOLCALL>\n\nThe user will execute tool-calls and return responses from tool(s) in '
              'this format:\n<TOOL_RESPONSE>[{{"tool_response1"}}, {{"tool_response2"}}]</TOOL_RESPONSE>\n\nBased '
              "on the tool responses, you can call additional tools if needed, correct tool calls if any errors are "
              "found, or just respond to the user."))

_MISTRAL_CALL = NAME_ARGUMENTS[:-1] + '{{ if .ID }}, "id": "{{ .ID }}"{{ end }}}'
_MISTRAL_V7_TOOLS = "[AVAILABLE_TOOLS]{{ json $.Tools }}[/AVAILABLE_TOOLS]"

OLLAMA_TOOL_FORMATS: dict[str, OllamaToolFormat] = {
    "default": OllamaToolFormat(_REACT_TOOLS, "Action: " + NAME + "\nAction Input: " + ARGUMENTS, "\n"),
    "qwen": _QWEN,
    "hermes": _QWEN,
    "hermes3": OllamaToolFormat(
        _HERMES3_TOOLS, _QWEN.call, "\n",
        limits="the Python-style definitions leave out `return` and `additionalProperties` (Ollama does not carry "
               "them), name a list of types `Union[]` and keep parameter descriptions untrimmed"),
    "llama3": OllamaToolFormat(_LLAMA3_TOOLS, NAME_PARAMETERS, ", ", MORE_THAN_ONE + "[{{ end }}",
                               MORE_THAN_ONE + "]{{ end }}", limits=INDENTED),
    "llama4": OllamaToolFormat(_LLAMA3_TOOLS, NAME_PARAMETERS, answer=("<|python_start|>", "<|python_end|>"),
                               limits=INDENTED),
    "mistral": OllamaToolFormat("[AVAILABLE_TOOLS] {{ json $.Tools }}[/AVAILABLE_TOOLS]", _MISTRAL_CALL, ", ",
                                "[TOOL_CALLS] [", "]", limits=CALL_IDS),
    "mistral_v7": OllamaToolFormat(_MISTRAL_V7_TOOLS, _MISTRAL_CALL, ", ", "[TOOL_CALLS][", "]", limits=CALL_IDS),
    "mistral_small": OllamaToolFormat(
        _MISTRAL_V7_TOOLS, "[TOOL_CALLS]" + NAME + "{{ if .ID }}[CALL_ID]{{ .ID }}{{ end }}[ARGS]" + ARGUMENTS,
        limits=CALL_IDS),
    "glm4": OllamaToolFormat(
        "# 可用工具{{ range $.Tools }}\n\n## {{ .Function.Name }}\n\n{{ json .Function }}\n"
        "在调用上述函数时，请使用 Json 格式表示调用的参数。{{ end }}", NAME + "\n" + ARGUMENTS, "\n", limits=INDENTED),
    "xml": OllamaToolFormat(
        go_text("# Tools\n\nYou have access to these functions:\n<tools>") + EACH_TOOL_ON_A_LINE
        + go_text("\n</tools>\n\nTo call a function, reply with:\n<tool_call>\n<function=NAME>\n"
                  "<parameter=ARGUMENT>\nVALUE\n</parameter>\n</function>\n</tool_call>"), _XML_CALL, "\n"),
    "command_r7b": OllamaToolFormat(
        '{{ range $k, $t := $.Tools }}{{ if $k }},\n{{ end }}    {"name": "{{ $t.Function.Name }}", "description": '
        '"{{ $t.Function.Description }}", "parameters": {{ json $t.Function.Parameters }}, "responses": null}'
        "{{ end }}",
        '    {"tool_call_id": "{{ .ID }}", "tool_name": "' + NAME + '", "parameters": ' + ARGUMENTS + "}", ",\n",
        "<|START_ACTION|>[\n", "\n]<|END_ACTION|>", answer=("<|START_THINKING|>", "<|END_THINKING|>"),
        limits=CALL_IDS),
    "internlm2": OllamaToolFormat("[" + EACH_FUNCTION + "]", "<|action_start|><|plugin|>\n" + NAME_ARGUMENTS
                                  + "<|action_end|>"),
    "nemotron": OllamaToolFormat(_NEMOTRON_TOOLS, NAME_ARGUMENTS, ", ", "<TOOLCALL>[", "]</TOOLCALL>"),
    "granite": OllamaToolFormat("{{ json $.Tools }}", NAME_ARGUMENTS, ", ", "<|tool_call|>[", "]", limits=INDENTED),
}

# What every format's Modelfile shares: Ollama hands the template tools and arguments it has parsed itself
JSON_LIMITS = ("Ollama re-serialises tool definitions and call arguments: their JSON is compact (no spaces), "
               "argument keys and a tool's parameters come in alphabetical order, and `<`, `>`, `&` are written "
               "as \\u003c, \\u003e, \\u0026")
