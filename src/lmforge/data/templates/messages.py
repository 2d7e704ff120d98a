"""The conversation types templates render: messages, tool calls, and the thinking policy."""

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
# How think blocks are rendered and supervised (docs/templates.md, "Reasoning models"):
#   true  - every trained answer carries a think block (an empty one is added where the data has none);
#   false - thoughts are removed; the family's empty think block goes into the prompt, unsupervised;
#   auto  - thoughts are kept where the data has them; an answer without one is never trained with an
#           empty block (the family's empty block, if it renders one, stays in the unsupervised prompt).
Thinking = Literal["true", "false", "auto"]


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""  # the call's id where the format writes one (Mistral, Command R7B); tool results name it

    def arguments_json(self) -> str:
        """The arguments as transformers' `tojson` filter writes them (what reference templates render)."""
        return json.dumps(self.arguments, ensure_ascii=False)

    def as_openai(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}
        if self.id:
            out["id"] = self.id
        return out


@dataclass(frozen=True)
class Message:
    """One turn. An assistant message may carry `tool_calls`; a `tool` message is one tool result. An answer
    the data marks not to learn from (`trained=False`: OpenAI's `weight: 0`) stays in the context, unsupervised."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""  # a tool result: the id of the call it answers
    trained: bool = field(default=True, kw_only=True)

    def as_openai(self) -> dict[str, Any]:
        """The message as transformers' `apply_chat_template` takes it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.as_openai() for call in self.tool_calls]
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out


def message_record(message: Message) -> dict[str, Any]:
    """`message` as JSON data, every field kept (`message_from_record` reads it back)."""
    record = message.as_openai()
    if not message.trained:
        record["trained"] = False
    return record


def message_from_record(record: dict[str, Any]) -> Message:
    calls = tuple(ToolCall(call["function"]["name"], call["function"]["arguments"], call.get("id", ""))
                  for call in record.get("tool_calls", ()))
    return Message(record["role"], record["content"], calls, record.get("tool_call_id", ""),
                   trained=record.get("trained", True))


_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def _alphanumeric_id(seed: str, length: int) -> str:
    """A deterministic id of `length` letters and digits (the same conversation always gets the same ids,
    so preprocessing is reproducible and cacheable)."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHANUMERIC))
        chars.append(_ALPHANUMERIC[digit])
    return "".join(chars)


def _is_alnum9(call_id: str) -> bool:
    return len(call_id) == 9 and call_id.isascii() and call_id.isalnum()


def assign_tool_call_ids(messages: list[Message], style: str = "alnum9") -> list[Message]:
    """The conversation with an id on every tool call and tool result that has none.

    Tool datasets (LLaMA-Factory's sharegpt shape) carry no ids, but Mistral's formats write a 9-character
    alphanumeric id on each call and result (`alnum9`), Command R7B numbers calls across the
    conversation (`index`) and Kimi-K2 names the function with that number (`kimi`: `functions.NAME:INDEX`);
    `given` keeps the ids a conversation has and gives the others 9 characters. Calls keep their own ids, but
    for `alnum9`, whose templates accept nothing else: an id of another shape (OpenAI's `call_` and 24
    characters) becomes 9 letters and digits derived from it, on its call and on every result naming it. A
    result without an id answers the next unanswered call of the answer before it, in order (the order tool
    datasets list results in).
    """
    renamed: dict[str, str] = {}

    def fitted(call_id: str) -> str:
        if style != "alnum9" or not call_id or _is_alnum9(call_id):
            return call_id
        if call_id not in renamed:
            new, salt = _alphanumeric_id(call_id, 9), 0
            while new in renamed.values():  # two ids of one conversation never share a replacement
                salt += 1
                new = _alphanumeric_id(f"{call_id}#{salt}", 9)
            renamed[call_id] = new
        return renamed[call_id]

    out: list[Message] = []
    count = 0
    pending: list[str] = []
    for position, message in enumerate(messages):
        if message.tool_calls:
            calls = []
            for call in message.tool_calls:
                call_id = fitted(call.id) or (
                    str(count) if style == "index" else f"functions.{call.name}:{count}" if style == "kimi"
                    else _alphanumeric_id(f"{position}:{count}:{call.name}:{call.arguments_json()}", 9))
                calls.append(replace(call, id=call_id) if call_id != call.id else call)
                count += 1
            pending = [call.id for call in calls]
            message = replace(message, tool_calls=tuple(calls))
        elif message.role == "tool":
            answered = fitted(message.tool_call_id) or (pending[0] if pending else "")
            if answered in pending:
                pending.remove(answered)
            if answered != message.tool_call_id:
                message = replace(message, tool_call_id=answered)
        out.append(message)
    return out


def normalize_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Tool definitions in OpenAI's `{"type": "function", "function": {...}}` shape (bare ones are wrapped)."""
    if not tools:
        return None
    return [tool if tool.get("type") == "function" and "function" in tool else {"type": "function", "function": tool}
            for tool in tools]


def split_thought(content: str, open_word: str, close_word: str) -> tuple[str | None, str]:
    """(thought, answer) of an answer that may start with a think block; thought is None when it has none.

    The split follows Qwen3's own template: the answer is what follows the last close word, without
    leading newlines; the thought is what precedes it, after the open word, without edge newlines.
    """
    if close_word not in content:
        return None, content
    before, _, answer = content.rpartition(close_word)
    thought = before.split(open_word)[-1].strip("\n")
    return thought, answer.lstrip("\n")
