"""MiniCPM-V 4.6 / 4.7 and MiniCPM-OCR (4.6's model and processor): the processor-native plugin plus what one
item's expansion cannot show.

Their processor packs every image's patches of a call into ONE `(1, C, patch, total length)` tensor (the
model reads `pixel_values[:1]`), so the batch's items are joined along the last axis, not stacked; and it
numbers the images of each row (`<image_id>N</image_id>` before each one), which a call per item always
numbers 0.
"""

from typing import Any

from lmforge.data.multimodal.media import DecodedMedia
from lmforge.data.multimodal.plugin import ProcessedMedia, register_mm_plugin
from lmforge.data.multimodal.plugins.native import NativePlugin

PROCESSORS = ("MiniCPMV4_6Processor", "MiniCPMV4_7Processor", "MiniCPMOcrProcessor")
PACKED_PIXELS = ("pixel_values", "pixel_values_videos")


@register_mm_plugin
class MiniCPMVPlugin(NativePlugin):
    name = "minicpm_v_4_6"
    fallback = False

    def __init__(self, processor: Any = None) -> None:
        super().__init__(processor)
        self.name = type(self).name
        self.fallback = False

    def for_processor(self, processor: Any) -> "MiniCPMVPlugin | None":
        if type(processor).__name__ not in PROCESSORS:
            return None
        bound = MiniCPMVPlugin(processor)
        return bound if bound.markers else None

    def process_media(self, processor: Any, media: DecodedMedia, where: str) -> ProcessedMedia:
        processed = super().process_media(processor, media, where)
        if processor.default_use_image_id:
            first = f"{processor.image_id_start_token}0{processor.image_id_end_token}"
            for runs in processed.runs.values():
                runs[:] = [run.replace(first, f"{processor.image_id_start_token}{index}"
                                              f"{processor.image_id_end_token}", 1)
                           for index, run in enumerate(runs)]
        return processed

    def get_mm_inputs(self, examples: list[ProcessedMedia], batch: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
        import torch

        inputs = super().get_mm_inputs(examples, batch, tokenizer)
        items = [item for example in examples for kind in self.markers for item in example.tensors.get(kind, [])]
        for key in PACKED_PIXELS:
            if key in inputs:
                inputs[key] = torch.cat([item[key] for item in items if key in item], dim=-1)
        return inputs
