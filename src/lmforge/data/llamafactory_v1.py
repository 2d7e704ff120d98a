"""LLaMA-Factory v1's messages, read as the OpenAI messages they stand for.

LLaMA-Factory's v1 data (its `reason_tool_use_demo_50.jsonl`, and what its v1 converters make of alpaca and
sharegpt rows) writes a message's content as typed blocks, `{"type": ..., "value": ...}`: `text`, `reasoning`
(the answer's thought), `tool_call` (a JSON object with `name` and `arguments`), and `image_url`, `video_url`,
`audio_url` (a media file); each message may carry a `loss_weight` (1.0 for answers, 0.0 for the rest), the
row's `tools` is a JSON string, and preference rows are two whole conversations, `chosen_messages` and
`rejected_messages`. `as_openai_message` turns one such message into OpenAI's fields (text parts, media parts,
`reasoning_content`, `tool_calls`, `weight`), which `openai_fields` then reads as it reads any OpenAI row.
"""

import json
from typing import Any

from lmforge.data.openai_fields import FieldError

BLOCK_TYPES = ("text", "reasoning", "tool_call", "image_url", "video_url", "audio_url")
PREFERENCE_COLUMNS = ("chosen_messages", "rejected_messages")


def is_v1_message(turn: dict[str, Any]) -> bool:
    """Whether a message's content is v1 blocks (a list of `{"type", "value"}` objects)."""
    content = turn.get("content")
    return isinstance(content, list) and any(isinstance(block, dict) and "value" in block for block in content)


def _call(value: Any, what: str) -> dict[str, Any]:
    try:
        call = json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError as err:
        raise FieldError(f"{what} is not valid JSON ({err.msg} at column {err.colno}): {value[:120]!r}") from None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str) or "arguments" not in call:
        raise FieldError(f'{what} must be a JSON object {{"name": ..., "arguments": {{...}}}}, got '
                         f"{json.dumps(call, ensure_ascii=False, default=str)[:120]}")
    return {"type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}


def _weight(turn: dict[str, Any], what: str) -> dict[str, Any]:
    """v1's `loss_weight` as OpenAI's `weight`: 1 or 0 on an answer; 0 (its default) on any other message."""
    if "loss_weight" not in turn:
        return {}
    weight = turn["loss_weight"]
    if turn.get("role") == "assistant":
        if weight not in (0, 1):
            raise FieldError(f"{what} `loss_weight` must be 0 (not trained) or 1 (trained), got {weight!r}; "
                             "lmforge weighs a whole answer or none of it")
        return {"weight": weight}
    if weight != 0:
        raise FieldError(f"{what} is a `{turn.get('role')}` message with `loss_weight` {weight!r}: lmforge trains "
                         "answers (`train_on_prompt: true` trains every prompt as well)")
    return {}


def as_openai_message(turn: dict[str, Any], what: str) -> dict[str, Any]:
    """One v1 message as an OpenAI message with the same role, text, media, thought, calls and weight."""
    parts: list[dict[str, Any]] = []
    thoughts: list[str] = []
    calls: list[dict[str, Any]] = []
    for number, block in enumerate(turn["content"], start=1):
        kind = block.get("type") if isinstance(block, dict) else None
        value = block.get("value") if isinstance(block, dict) else None
        where = f"{what} block {number}"
        if kind not in BLOCK_TYPES or (kind != "tool_call" and not isinstance(value, str)):
            raise FieldError(f'{where} must be {{"type": one of {", ".join(BLOCK_TYPES)}, "value": a string}}, got '
                             f"{json.dumps(block, ensure_ascii=False, default=str)[:120]}")
        if kind == "text":
            parts.append({"type": "text", "text": value})
        elif kind == "reasoning":
            thoughts.append(value)
        elif kind == "tool_call":
            calls.append(_call(value, where))
        else:  # a media file: `openai_fields.part_sources` reads it from the block's `value`
            parts.append({"type": kind, "path": value})
    if (thoughts or calls) and turn.get("role") != "assistant":
        raise FieldError(f"{what} is a `{turn.get('role')}` message with reasoning or tool_call blocks; only "
                         "answers hold them")
    message = {"role": turn.get("role"), "content": parts or None, **_weight(turn, what)}
    if thoughts:
        message["reasoning_content"] = "".join(thoughts)
    if calls:
        message["tool_calls"] = calls
    return message
