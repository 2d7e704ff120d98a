"""Gemma 3: `<start_of_image>` expands to blank lines around `<start_of_image>`, the soft image tokens
and `<end_of_image>`; `token_type_ids` mark the image tokens (they attend to each other bidirectionally)."""

from typing import ClassVar

from lmforge.data.multimodal.plugin import MMPlugin, register_mm_plugin


@register_mm_plugin
class Gemma3Plugin(MMPlugin):
    name = "gemma3"
    processor_classes = ("Gemma3Processor",)
    markers: ClassVar[dict[str, str]] = {"images": "<start_of_image>"}
    media_tokens: ClassVar[dict[str, int]] = {"<image_soft_token>": 1}
    token_type_key = "token_type_ids"
    # with token_type_ids, transformers' Gemma 3 mask does not keep packed examples apart (tested)
    supports_packing = False
