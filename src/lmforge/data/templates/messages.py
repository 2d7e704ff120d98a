"""The conversation types templates render: messages, tool calls, and the thinking policy."""

import json
from dataclasses import dataclass, field
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

    def arguments_json(self) -> str:
        """The arguments as transformers' `tojson` filter writes them (what reference templates render)."""
        return json.dumps(self.arguments, ensure_ascii=False)

    def as_openai(self) -> dict[str, Any]:
        return {"type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Message:
    """One turn. An assistant message may carry `tool_calls`; a `tool` message is one tool result."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()

    def as_openai(self) -> dict[str, Any]:
        """The message as transformers' `apply_chat_template` takes it."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            out["tool_calls"] = [call.as_openai() for call in self.tool_calls]
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
