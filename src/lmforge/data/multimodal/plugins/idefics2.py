"""Idefics2: the native plugin plus its processor's edits around images, which one item's expansion cannot show."""

import re
from dataclasses import replace
from typing import Any, ClassVar

from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin
from lmforge.data.multimodal.plugins.native import NativePlugin
from lmforge.data.templates.template import Message


@register_mm_plugin
class Idefics2Plugin(NativePlugin):
    name = "idefics2"
    processor_classes = ("Idefics2Processor",)
    fallback = False
    markers: ClassVar[dict[str, str]] = {"images": "<image>"}  # a bound instance reads them from its processor

    def __init__(self, processor: Any = None) -> None:
        super().__init__(processor)
        self.name = "idefics2"

    def for_processor(self, processor: Any) -> MMPlugin | None:
        return Idefics2Plugin(processor) if type(processor).__name__ in self.processor_classes else None

    def process_messages(self, messages: list[Message], processed: ProcessedMedia, where: str) -> list[Message]:
        """Adjacent images share one boundary token; a word right after an image is set one space apart."""
        boundary = self.processor.fake_image_token
        glued = re.compile(rf"{re.escape(boundary)}(?=[^\s<])")  # the processor's own rule: not before space or `<`
        return [replace(message, content=glued.sub(boundary + " ", message.content.replace(boundary * 2, boundary)))
                for message in super().process_messages(messages, processed, where)]
