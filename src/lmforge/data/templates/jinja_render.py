"""Rendering lmforge messages with a model's own jinja chat template, in the shape that template reads.

Jinja templates disagree on how a message carries what lmforge holds in one place: a thought is a
`reasoning_content` field (Qwen3, GLM-4.5), a `thinking` field (gpt-oss, LFM2.5) or `<think>` in the
content; call arguments are a dict or a JSON string (DeepSeek concatenates them); content is a string
or a list of typed parts (vision-language templates). `JinjaStyle` says which, read once from the
template (its source, and renderings of a probe), so every later rendering passes messages as it reads them.
"""

import json
import re
from dataclasses import dataclass
from typing import Any

from transformers.utils.chat_template_utils import render_jinja_template

from lmforge.data.templates.messages import Message, ToolCall, split_thought
from lmforge.errors import TemplateError

THOUGHT_WORDS = ("<think>", "</think>")  # how lmforge's data holds a thought: in front of the answer


def with_thought_block(thought: str, content: str) -> str:
    """An answer with its thought in front, as lmforge's data holds it (OpenAI-style `reasoning_content`)."""
    return f"{THOUGHT_WORDS[0]}\n{thought.strip()}\n{THOUGHT_WORDS[1]}\n\n{content}"
# Variables templates read to keep earlier turns' thoughts (Gemma 4, LFM2.5; Hunyuan's spelling)
PRESERVE_VARIABLES = ("preserve_thinking", "preserved_thinking")
_THOUGHT_FIELDS = (("reasoning_content", r"reasoning_content"),
                   ("thinking", r"message\.thinking|\[['\"]thinking['\"]\]"),
                   ("reasoning", r"message\.reasoning\b|\[['\"]reasoning['\"]\]|get\(['\"]reasoning['\"]\)"))


@dataclass(frozen=True)
class JinjaStyle:
    """How one jinja template takes messages."""

    thought_field: str | None = None  # the message field it reads a thought from (None: `<think>` in content)
    arguments_as_json: bool = False  # call arguments as a JSON string (the OpenAI request shape)
    content_parts: bool = False  # content as `[{"type": "text", "text": ...}]`
    reads_preserve_thinking: bool = False  # it has its own switch to keep earlier turns' thoughts
    reads_enable_thinking: bool = False


def jinja_message(message: Message, style: JinjaStyle) -> dict[str, Any]:
    """The message as this template reads it."""
    out = message.as_openai()
    if message.role == "assistant" and style.thought_field:
        thought, content = split_thought(message.content, *THOUGHT_WORDS)
        if thought is not None:
            out["content"], out[style.thought_field] = content, thought
    if style.arguments_as_json:
        for call in out.get("tool_calls", []):
            call["function"]["arguments"] = json.dumps(call["function"]["arguments"], ensure_ascii=False)
        if message.tool_calls and not out["content"]:
            out["content"] = None
    if style.content_parts and isinstance(out["content"], str):
        out["content"] = [{"type": "text", "text": out["content"]}]
    return out


def render_jinja(chat_template: str, messages: list[Message], *, tools: list[dict[str, Any]] | None = None,
                 add_generation_prompt: bool = False, bos_token: str = "", eos_token: str = "",
                 style: JinjaStyle = JinjaStyle(), **variables: Any) -> str:
    """`apply_chat_template`'s text: transformers' own jinja environment; `variables` as its extra kwargs."""
    try:
        rendered = render_jinja_template([[jinja_message(m, style) for m in messages]], tools=tools,
                                         chat_template=chat_template, add_generation_prompt=add_generation_prompt,
                                         bos_token=bos_token, eos_token=eos_token, **variables)
    except Exception as err:  # jinja raises TemplateError, but templates also fail with KeyError, TypeError, ...
        raise TemplateError(f"the tokenizer's chat template cannot render this conversation: {err}") from None
    return rendered[0][0]


PROBE_ANSWER = "ANSWERTEXTONE"
_PROBE = [Message("user", "QUESTIONTEXT"), Message("assistant", PROBE_ANSWER)]
_PROBE_CALL = [Message("user", "QUESTIONTEXT"),
               Message("assistant", "", (ToolCall("get_weather", {"city": "Paris"}, "call00001"),)),
               Message("tool", '{"temperature": 21}', tool_call_id="call00001"), Message("assistant", PROBE_ANSWER)]
_PROBE_TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "Weather of a city.",
                                                  "parameters": {"type": "object",
                                                                 "properties": {"city": {"type": "string"}}}}}]


def detect_style(chat_template: str, bos_token: str = "", eos_token: str = "") -> JinjaStyle:
    """Read how the template takes messages: its thought field from the source, content parts and JSON
    arguments from whether a probe's text survives rendering in each shape."""
    field = next((name for name, pattern in _THOUGHT_FIELDS if re.search(pattern, chat_template)), None)
    tokens = dict(bos_token=bos_token, eos_token=eos_token)

    def shows_answer(style: JinjaStyle, messages: list[Message], tools: list[dict[str, Any]] | None) -> bool:
        try:
            return PROBE_ANSWER in render_jinja(chat_template, messages, tools=tools, style=style, **tokens)
        except TemplateError:
            return False

    parts = not shows_answer(JinjaStyle(), _PROBE, None) and shows_answer(JinjaStyle(content_parts=True), _PROBE,
                                                                           None)
    as_json = (not shows_answer(JinjaStyle(content_parts=parts), _PROBE_CALL, _PROBE_TOOLS)
               and shows_answer(JinjaStyle(content_parts=parts, arguments_as_json=True), _PROBE_CALL, _PROBE_TOOLS))
    return JinjaStyle(field, as_json, parts, any(name in chat_template for name in PRESERVE_VARIABLES),
                      "enable_thinking" in chat_template)
