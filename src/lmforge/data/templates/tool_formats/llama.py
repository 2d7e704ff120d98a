"""Llama 3.1+ (one JSON object {"name", "parameters"}) and Llama 4 (`<|python_start|>` then the objects)."""

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, concatenated_json_calls, dumps, json_calls
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import (
    NAME_PARAMETERS,
    JinjaToolFormat,
    append_tools,
    q,
    set_tools,
)

# -- llama3: one JSON object {"name", "parameters"} (several: a JSON list) ----------------------------------


def _llama3_tools(tools: Tools) -> str:
    listed = "".join(dumps(tool, indent=4) + "\n\n" for tool in tools)
    return ("Given the following functions, please respond with a JSON for a function call with its proper "
            "arguments that best answers the given prompt.\n\n"
            'Respond in the format {"name": function name, "parameters": dictionary of argument name and its '
            f'value}}.Do not use variables.\n\n{listed}')


def _llama3_calls(calls: tuple[ToolCall, ...]) -> str:
    objects = [f'{{"name": "{call.name}", "parameters": {call.arguments_json()}}}' for call in calls]
    return objects[0] if len(objects) == 1 else "[" + ", ".join(objects) + "]"


# -- llama4: `<|python_start|>TEXT<|python_end|>` then the calls' JSON objects back to back ------------------

def _llama4_calls(calls: tuple[ToolCall, ...]) -> str:
    return "".join(f'{{"name": "{call.name}", "parameters": {call.arguments_json()}}}' for call in calls)


def _llama4_parse(text: str) -> list[ToolCall]:
    calls = text.split("<|python_end|>", 1)[1] if "<|python_end|>" in text else text
    return concatenated_json_calls(calls, "parameters") if calls.strip().startswith("{") else []


_JINJA_TOOLS = "".join([
    set_tools(q("Given the following functions, please respond with a JSON for a function call with its proper "
                "arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, "
                "\"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n")),
    "{%- for tool in ns.tool_list -%}" + append_tools("tool | tojson(indent=4) + '\\n\\n'") + "{%- endfor -%}",
])
_GO_TOOLS = go.go_text(
    "Given the following functions, please respond with a JSON for a function call with its proper arguments "
    'that best answers the given prompt.\n\nRespond in the format {"name": function name, "parameters": '
    "dictionary of argument name and its value}.Do not use variables.\n\n"
) + "{{ range $.Tools }}{{ json . }}\n\n{{ end }}"

register_tool_format(ToolFormat(
    "llama3", _llama3_tools, _llama3_calls, lambda text: json_calls(text, "parameters"),
    description='Llama 3.1+: one JSON object {"name", "parameters"}, tools before the first question',
    jinja=JinjaToolFormat(_JINJA_TOOLS, NAME_PARAMETERS, ", ", "('[' if count > 1 else '')",
                          "(']' if count > 1 else '')"),
    ollama=OllamaToolFormat(_GO_TOOLS, go.NAME_PARAMETERS, ", ", go.MORE_THAN_ONE + "[{{ end }}",
                            go.MORE_THAN_ONE + "]{{ end }}", limits=go.INDENTED)))
register_tool_format(ToolFormat(
    "llama4", _llama3_tools, _llama4_calls, _llama4_parse, call_marker="<|python_start|>",
    call_words=("<|python_end|>",), render_answer=lambda text, calls: f"<|python_start|>{text}<|python_end|>{calls}",
    description='Llama 4: `<|python_start|>TEXT<|python_end|>` then {"name", "parameters"} objects',
    jinja=JinjaToolFormat(_JINJA_TOOLS, NAME_PARAMETERS, answer="'<|python_start|>' + text + '<|python_end|>' + calls"),
    ollama=OllamaToolFormat(_GO_TOOLS, go.NAME_PARAMETERS, answer=("<|python_start|>", "<|python_end|>"),
                            limits=go.INDENTED)))
