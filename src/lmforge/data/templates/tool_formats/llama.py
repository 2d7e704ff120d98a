"""Llama 3.1+ (one JSON object {"name", "parameters"}) and Llama 4 (`<|python_start|>` then the objects)."""

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, concatenated_json_calls, dumps, json_calls

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


FORMATS = [
    ToolFormat("llama3", _llama3_tools, _llama3_calls, lambda text: json_calls(text, "parameters"),
               description='Llama 3.1+: one JSON object {"name", "parameters"}, tools before the first question'),
    ToolFormat("llama4", _llama3_tools, _llama4_calls, _llama4_parse, call_marker="<|python_start|>",
               call_words=("<|python_end|>",),
               render_answer=lambda text, calls: f"<|python_start|>{text}<|python_end|>{calls}",
               description='Llama 4: `<|python_start|>TEXT<|python_end|>` then {"name", "parameters"} objects'),
]
