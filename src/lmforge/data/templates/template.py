"""A chat template is data: string slots with placeholders, rendered into supervised segments.

Slots may contain `{{content}}`, `{{bos_token}}` and `{{eos_token}}`. Special tokens are written as
their text (`<|im_end|>`); the tokenizer recognises them as added tokens.

Rendering a conversation gives a list of `Segment`s. Only the assistant slot (`format_assistant`:
the answer and its end-of-turn token) is supervised; the assistant header (`format_generation`)
and the glue after an answer (`assistant_suffix`, e.g. ChatML's newline after `<|im_end|>`) are not,
so the model learns to stop exactly at its end-of-turn token.
"""

from dataclasses import dataclass, field
from typing import Literal

from lmforge.errors import TemplateError

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Segment:
    text: str
    supervised: bool


@dataclass(frozen=True)
class Template:
    name: str
    format_user: str
    format_assistant: str
    format_generation: str = ""
    format_system: str = ""
    format_prefix: str = ""
    assistant_suffix: str = ""
    default_system: str = ""
    stop_words: tuple[str, ...] = ()
    strip_content: bool = False
    reference: str | None = None  # refdata chat_templates/*.jinja this template is proven equal to
    multimodal: bool = False  # made for vision/audio-language models (image/audio placeholders)
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    def _fill(self, slot: str, content: str, bos: str, eos: str) -> str:
        if self.strip_content:
            content = content.strip()
        return slot.replace("{{bos_token}}", bos).replace("{{eos_token}}", eos).replace("{{content}}", content)

    def render(
        self,
        messages: list[Message],
        *,
        system: str | None = None,
        add_generation_prompt: bool = False,
        bos_token: str = "",
        eos_token: str = "",
    ) -> list[Segment]:
        """Segments of the whole conversation, in order. A leading system message overrides `system`."""
        if messages and messages[0].role == "system":
            system, messages = messages[0].content, messages[1:]
        system = system if system is not None else self.default_system
        fill = lambda slot, content="": self._fill(slot, content, bos_token, eos_token)  # noqa: E731
        segments = [Segment(fill(self.format_prefix), False)]
        if system and self.format_system:
            segments.append(Segment(fill(self.format_system, system), False))
        elif system:
            raise TemplateError(f"template `{self.name}` has no system slot; remove the system prompt")
        for message in messages:
            if message.role == "user":
                segments.append(Segment(fill(self.format_user, message.content), False))
            elif message.role == "assistant":
                segments.append(Segment(fill(self.format_generation), False))
                segments.append(Segment(fill(self.format_assistant, message.content), True))
                segments.append(Segment(fill(self.assistant_suffix), False))
            elif message.role == "system" and self.format_system:
                segments.append(Segment(fill(self.format_system, message.content), False))
            else:
                raise TemplateError(f"template `{self.name}` cannot render a `{message.role}` message here")
        if add_generation_prompt:
            segments.append(Segment(fill(self.format_generation), False))
        return [segment for segment in segments if segment.text]

    def render_text(self, messages: list[Message], **kwargs: object) -> str:
        return "".join(segment.text for segment in self.render(messages, **kwargs))  # type: ignore[arg-type]
