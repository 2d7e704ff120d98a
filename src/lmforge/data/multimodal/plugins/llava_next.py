"""LLaVA-NeXT: `<image>` becomes one token per patch of the base view and of the any-resolution crops;
images with different crop counts are zero-padded to the batch's largest (`image_sizes` says the real one)."""

from typing import ClassVar

from lmforge.data.multimodal.plugin import MMPlugin, register_mm_plugin


@register_mm_plugin
class LlavaNextPlugin(MMPlugin):
    name = "llava_next"
    processor_classes = ("LlavaNextProcessor",)
    markers: ClassVar[dict[str, str]] = {"images": "<image>"}
    media_tokens: ClassVar[dict[str, int]] = {"<image>": 1}
