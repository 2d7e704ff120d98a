"""LLaVA: each `<image>` becomes a fixed run of `<image>` tokens (one per vision patch)."""

from typing import ClassVar

from lmforge.data.multimodal.plugin import MMPlugin, register_mm_plugin


@register_mm_plugin
class LlavaPlugin(MMPlugin):
    name = "llava"
    processor_classes = ("LlavaProcessor",)
    markers: ClassVar[dict[str, str]] = {"images": "<image>"}
    media_tokens: ClassVar[dict[str, int]] = {"<image>": 1}
