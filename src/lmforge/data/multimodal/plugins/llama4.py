"""Llama 4: `<|image|>` becomes `<|image_start|>`, the `<|patch|>` runs of each tile with tile separators,
the global view and `<|image_end|>`; the model's image features replace the `<|patch|>` tokens."""

from typing import Any, ClassVar

from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin


@register_mm_plugin
class Llama4Plugin(MMPlugin):
    name = "llama4"
    processor_classes = ("Llama4Processor",)
    markers: ClassVar[dict[str, str]] = {"images": "<|image|>"}
    media_tokens: ClassVar[dict[str, int]] = {"<|patch|>": 1}

    def get_mm_inputs(self, examples: list[ProcessedMedia], batch: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
        inputs = super().get_mm_inputs(examples, batch, tokenizer)
        if "pixel_values" in inputs:  # the processor normalizes in bfloat16; the model casts to its own dtype
            inputs["pixel_values"] = inputs["pixel_values"].float()
        return inputs
