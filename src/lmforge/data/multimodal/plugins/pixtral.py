"""Pixtral: `[IMG]` tokens row by row, `[IMG_BREAK]` after each row and `[IMG_END]` last; images keep
their own size (padded to the batch's largest, `image_sizes` holds the real ones)."""

from typing import ClassVar

from lmforge.data.multimodal.plugin import MMPlugin, register_mm_plugin


@register_mm_plugin
class PixtralPlugin(MMPlugin):
    name = "pixtral"
    processor_classes = ("PixtralProcessor",)
    markers: ClassVar[dict[str, str]] = {"images": "[IMG]"}
    media_tokens: ClassVar[dict[str, int]] = {"[IMG]": 1}
