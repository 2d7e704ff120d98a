"""The one in-memory shape every dataset format converts to."""

from dataclasses import dataclass
from typing import Any

from lmforge.data.templates.template import Message


@dataclass(frozen=True)
class Conversation:
    messages: list[Message]
    system: str | None
    source: str  # "file:row" for messages about this example
    tools: list[dict[str, Any]] | None = None  # tool definitions (OpenAI shape) the answers may call
