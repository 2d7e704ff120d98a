"""Qwen2-VL and Qwen2.5-VL: `<|vision_start|>` + one `<|image_pad|>` (`<|video_pad|>`) per merged patch
+ `<|vision_end|>`; `mm_token_type_ids` mark them, and packed rows get 3-D M-RoPE position ids."""

from typing import Any, ClassVar

from lmforge.data.multimodal.media import DecodedMedia
from lmforge.data.multimodal.mrope import mrope_position_ids
from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin


@register_mm_plugin
class Qwen2VLPlugin(MMPlugin):
    name = "qwen2_vl"
    processor_classes = ("Qwen2VLProcessor", "Qwen2_5_VLProcessor")
    markers: ClassVar[dict[str, str]] = {"images": "<|vision_start|><|image_pad|><|vision_end|>",
               "videos": "<|vision_start|><|video_pad|><|vision_end|>"}
    media_tokens: ClassVar[dict[str, int]] = {"<|image_pad|>": 1, "<|video_pad|>": 2}
    token_type_key = "mm_token_type_ids"

    def processor_kwargs(self, kind: str, item: Any, media: DecodedMedia, index: int) -> dict[str, Any]:
        if kind == "videos":  # frames are sampled already (video_fps, video_maxlen)
            return {"videos": [item], "do_sample_frames": False, "fps": media.video_fps[index]}
        return super().processor_kwargs(kind, item, media, index)

    def position_ids(self, input_ids: list[int], processed: ProcessedMedia, processor: Any) -> Any:
        import torch

        ids = torch.as_tensor(input_ids)
        types = self.token_type_ids(ids, processor.tokenizer).tolist()
        grids = {1: [t["image_grid_thw"][0] for t in processed.tensors.get("images", [])],
                 2: [t["video_grid_thw"][0] for t in processed.tensors.get("videos", [])]}
        return mrope_position_ids(types, grids, processor.image_processor.merge_size)
