"""The one in-memory shape every dataset format converts to."""

from dataclasses import dataclass

from lmforge.data.templates.template import Message


@dataclass(frozen=True)
class Conversation:
    messages: list[Message]
    system: str | None
    source: str  # "file:row" for messages about this example
