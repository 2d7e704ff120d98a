"""The fields of OpenAI's chat fine-tuning rows beyond a message's role and text, read for one message.

OpenAI's format (which trl's conversational datasets and Axolotl's `chat_template` datasets share) writes an
answer's tool calls in the message itself (`tool_calls: [{"id", "type": "function", "function": {"name",
"arguments"}}]`, with `content` null or text beside them), answers each call with a `tool` message naming it
(`tool_call_id`; parallel calls get a run of results), lets `content` be a list of typed parts, and marks an
answer not to learn from with `weight: 0`. Reasoning data keeps an answer's thought in `reasoning_content`
(DeepSeek's API, Qwen's templates) or `thinking` (gpt-oss's); lmforge's data holds it as a think block in front
of the answer. LLaMA-Factory's own `openai` rows write calls as a `function_call` message whose content is the
calls' JSON; both shapes are read (`formats.sharegpt_messages`).
"""

import json
from typing import Any

from lmforge.data.templates.jinja_render import THOUGHT_WORDS, with_thought_block
from lmforge.data.templates.messages import ToolCall
from lmforge.errors import DataError

# Part types that carry media, by the kind of media: OpenAI's, and transformers' processors' (`{"type": "image",
# "path": ...}`; trl's rows write `{"type": "image"}` and keep the files in an `images` column)
MEDIA_PARTS = {"image_url": "images", "image": "images", "input_image": "images", "video": "videos",
               "video_url": "videos", "input_audio": "audios", "audio": "audios", "audio_url": "audios"}
SOURCE_KEYS = ("path", "url", "image", "video", "audio", "image_url", "video_url", "audio_url", "input_audio",
               "input_image", "file", "value")  # value: LLaMA-Factory v1's media blocks (llamafactory_v1.py)


class FieldError(DataError):
    """A message field is malformed; the caller adds the row's location."""


def content_text(value: Any, what: str, *, allow_empty: bool = False) -> str:
    """A message's text: a string, or OpenAI's list of parts, joined in order, each media part as its kind's
    placeholder (`<image>`, `<video>`, `<audio>`: where the item goes; `part_sources` reads its file)."""
    if isinstance(value, list):
        texts = []
        for number, part in enumerate(value, start=1):
            kind = part.get("type") if isinstance(part, dict) else None
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind in MEDIA_PARTS:
                texts.append(f"<{MEDIA_PARTS[kind][:-1]}>")
            else:
                raise FieldError(f"{what} part {number} must be a text part ({{\"type\": \"text\", \"text\": ...}}) "
                                 "or a media part (`image_url`, `image`, `video`, `audio`, `input_audio`), got "
                                 f"{json.dumps(part, ensure_ascii=False, default=str)[:120]}")
        value = "".join(texts)
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str):
        raise FieldError(f"{what} must be a string or a list of parts, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise FieldError(f"{what} is empty")
    return value


def part_sources(messages: Any, what: str) -> dict[str, list[str | None]]:
    """The file of each media part of a list of messages, by kind, in order (None: a part without one, whose
    file the row's media column holds, as trl's rows do). A remote or inline item is refused: lmforge reads files."""
    found: dict[str, list[str | None]] = {}
    for message in messages if isinstance(messages, list) else []:
        parts = message.get("content") if isinstance(message, dict) else None
        for part in parts if isinstance(parts, list) else []:
            kind = MEDIA_PARTS.get(part.get("type")) if isinstance(part, dict) else None
            if kind is None:
                continue
            source = next((part[key] for key in SOURCE_KEYS if part.get(key)), None)
            if isinstance(source, dict):  # OpenAI's {"image_url": {"url": ...}}, {"input_audio": {"data": ...}}
                source = source.get("url") or source.get("path") or ("inline data" if source.get("data") else None)
            if source is not None and not isinstance(source, str):
                raise FieldError(f"{what}: a {kind[:-1]} part's file must be a path, got {type(source).__name__}")
            if source and (source.startswith(("http://", "https://", "data:")) or source == "inline data"):
                raise FieldError(f"{what}: {kind[:-1]} {source[:60]!r} is not a file; lmforge reads media files "
                                 "(download or decode it, and give its path)")
            found.setdefault(kind, []).append(source.removeprefix("file://") if source else None)
    return found
def tool_calls(value: Any, what: str) -> tuple[ToolCall, ...]:
    """An assistant message's `tool_calls`: OpenAI's `{"id", "type": "function", "function": {"name",
    "arguments"}}` items, the arguments a JSON object or a string of one."""
    if not isinstance(value, list) or not value:
        raise FieldError(f"{what} `tool_calls` must be a non-empty list of calls")
    calls = []
    for number, item in enumerate(value, start=1):
        function = item.get("function") if isinstance(item, dict) else None
        shown = json.dumps(item, ensure_ascii=False, default=str)[:120]
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise FieldError(f'{what} tool call {number} must be {{"type": "function", "function": {{"name": ..., '
                             f'"arguments": ...}}}}, got {shown}')
        if item.get("type", "function") != "function":
            raise FieldError(f"{what} tool call {number} has type {item['type']!r}; only function calls are read")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as err:
                raise FieldError(f"{what} tool call {number} arguments are not valid JSON ({err.msg} at column "
                                 f"{err.colno}): {arguments[:120]!r}") from None
        if not isinstance(arguments, dict):
            raise FieldError(f"{what} tool call {number} arguments must be a JSON object, got {shown}")
        call_id = item.get("id") or ""
        if not isinstance(call_id, str):
            raise FieldError(f"{what} tool call {number} `id` must be a string, got {call_id!r}")
        calls.append(ToolCall(function["name"], arguments, call_id))
    return tuple(calls)


def answer_weight(turn: dict[str, Any], answer: bool, what: str) -> bool:
    """Whether an answer is learned from: OpenAI's `weight` (1, the default, or 0); only answers carry one."""
    if "weight" not in turn:
        return True
    weight = turn["weight"]
    if not answer:
        raise FieldError(f"{what} has a `weight`; only assistant messages carry one (0: not trained, 1: trained)")
    if weight not in (0, 1):
        raise FieldError(f"{what} `weight` must be 0 (not trained) or 1 (trained), got {weight!r}")
    return bool(weight)


def tool_call_id(turn: dict[str, Any], what: str) -> str:
    """A tool result's `tool_call_id` (empty where it names none: it answers the next unanswered call)."""
    value = turn.get("tool_call_id") or ""
    if not isinstance(value, str):
        raise FieldError(f"{what} `tool_call_id` must be a string, got {value!r}")
    return value


def with_thought(turn: dict[str, Any], content: str, what: str) -> str:
    """An answer's content with its `reasoning_content` (or `thinking`) as the think block in front of it."""
    fields = [name for name in ("reasoning_content", "thinking") if turn.get(name) not in (None, "")]
    if not fields:
        return content
    thought = turn[fields[0]]
    if len(fields) > 1 or not isinstance(thought, str):
        raise FieldError(f"{what} must hold its thought in one string field, `reasoning_content` or `thinking`")
    if THOUGHT_WORDS[1] in content:
        raise FieldError(f"{what} has both `{fields[0]}` and a think block in its content; keep one")
    return with_thought_block(thought, content)
