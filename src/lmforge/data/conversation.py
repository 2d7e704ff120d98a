"""The one in-memory shape every dataset format converts to."""

from dataclasses import dataclass, field
from typing import Any

from lmforge.data.templates.template import Message

MEDIA_KINDS = ("images", "videos", "audios")


@dataclass(frozen=True)
class Conversation:
    messages: list[Message]
    system: str | None
    source: str  # "file:row" for messages about this example
    # Keyword-only: a positional fourth argument could silently land in the wrong one.
    tools: list[dict[str, Any]] | None = field(default=None, kw_only=True)  # tool definitions (OpenAI shape)
    media: dict[str, list[str]] = field(default_factory=dict, kw_only=True)  # kind -> checked file paths, in order


@dataclass(frozen=True)
class Preference:
    """A ranking row: one prompt (ending with a user turn) and a preferred and a rejected answer."""

    prompt: list[Message]
    system: str | None
    chosen: str
    rejected: str
    source: str
    tools: list[dict[str, Any]] | None = field(default=None, kw_only=True)  # tool definitions (OpenAI shape)


@dataclass(frozen=True)
class LabeledConversation:
    """A KTO row: a conversation whose last answer is desirable or not."""

    conversation: Conversation
    desirable: bool

    @property
    def media(self) -> dict[str, list[str]]:
        return self.conversation.media

    @property
    def source(self) -> str:
        return self.conversation.source
