"""What a tool format is (its Python rendering and parsing, with its jinja and Go pieces), and the JSON
helpers the formats share."""

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat
from lmforge.errors import TemplateError

Tools = list[dict[str, Any]]


@dataclass(frozen=True)
class ToolFormat:
    name: str
    render_tools: Callable[[Tools], str]
    render_calls: Callable[[tuple[ToolCall, ...]], str]
    parse_calls: Callable[[str], list[ToolCall]]
    content_separator: str = "\n"  # between an assistant's text and its calls
    description: str = ""
    call_ids: str = ""  # ids the format writes on calls and results: "alnum9" (Mistral), "index" (Command R7B),
    # "kimi" (`functions.NAME:INDEX`)
    # how an answer's text and its rendered calls combine (default: text, content_separator, calls)
    render_answer: Callable[[str, str], str] | None = None
    # the text that opens the calls in an answer (what precedes it is the answer's content); "" for
    # formats whose calls are the whole answer (Llama 3's JSON, GLM-4's name line)
    call_marker: str = ""
    # the other marker words the calls are written with; a family's tokenizer may hold each as one special
    # token, which serving keeps in decoded answers (with the call marker) so the calls parse
    call_words: tuple[str, ...] = ()
    # the same rendering as jinja, for saved tokenizers (None: a template of this format cannot be saved)
    jinja: JinjaToolFormat | None = None
    # ... and as Ollama Go-template pieces, for Modelfiles (None: the Modelfile says it has no tool rendering)
    ollama: OllamaToolFormat | None = None

    @property
    def markers(self) -> tuple[str, ...]:
        """Every marker word of the format's calls (the call marker first)."""
        return tuple(word for word in (self.call_marker, *self.call_words) if word)

    def join(self, text: str, calls: str) -> str:
        """An answer's text and its rendered calls, as the format writes them together."""
        if self.render_answer is not None:
            return self.render_answer(text, calls)
        return f"{text}{self.content_separator}{calls}" if text else calls


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


# A parameter value in the XML call formats (GLM-4.5's `<arg_value>`, MiniMax-M2's `<parameter name=...>`,
# Qwen3-Coder-style `<parameter=KEY>`): a string written bare, anything else as JSON; the same as jinja.
XML_VALUE_JINJA = "(value if value is string else value | tojson)"


def xml_value(value: Any) -> str:
    return value if isinstance(value, str) else dumps(value)


def parse_xml_value(raw: str) -> Any:
    """A parameter value as the model writes it: JSON for anything but a string, which is written bare (so a
    bare string that reads as a JSON string stays the raw text)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return raw if isinstance(value, str) else value


def function_of(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool)


def call_from_json(obj: Any, arguments_key: str = "arguments") -> ToolCall:
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        raise TemplateError(f"a tool call must be a JSON object with a string `name`, got {dumps(obj)}")
    arguments = obj.get(arguments_key, obj.get("arguments", obj.get("parameters", {})))
    if isinstance(arguments, str):
        arguments = loads(arguments, "tool call arguments")
    if not isinstance(arguments, dict):
        raise TemplateError(f"tool call `{obj['name']}`: arguments must be a JSON object")
    return ToolCall(obj["name"], arguments)


def loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise TemplateError(f"{what} is not valid JSON ({err.msg} at column {err.colno}): {text[:200]}") from None


def json_calls(text: str, arguments_key: str) -> list[ToolCall]:
    text = text.strip()
    if not text.startswith(("{", "[")):
        return []
    parsed = loads(text, "the tool call")
    return [call_from_json(obj, arguments_key) for obj in (parsed if isinstance(parsed, list) else [parsed])]


def json_arguments(text: str, name: str) -> dict[str, Any]:
    """A call's arguments written as one JSON object."""
    arguments = loads(text, f"arguments of `{name}`")
    if not isinstance(arguments, dict):
        raise TemplateError(f"tool call `{name}`: arguments must be a JSON object")
    return arguments


def with_ids(calls: list[ToolCall], objects: list[Any]) -> list[ToolCall]:
    return [replace(call, id=str(obj.get("id", ""))) if isinstance(obj, dict) else call
            for call, obj in zip(calls, objects, strict=True)]


def concatenated_json_calls(text: str, arguments_key: str) -> list[ToolCall]:
    """Calls written as JSON objects one after another (no list, no separator)."""
    decoder, calls, position = json.JSONDecoder(), [], 0
    text = text.strip()
    while position < len(text):
        try:
            obj, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise TemplateError(f"a tool call is not valid JSON ({err.msg} at column {err.colno}): "
                                f"{text[position:position + 200]}") from None
        calls.append(call_from_json(obj, arguments_key))
        position = end
        while position < len(text) and text[position].isspace():
            position += 1
    return calls
