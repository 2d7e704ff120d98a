"""Qwen2-VL and Qwen2.5-VL: `<|vision_start|>` + one `<|image_pad|>` (`<|video_pad|>`) per merged patch
+ `<|vision_end|>`; `mm_token_type_ids` mark them, and packed rows get 3-D M-RoPE position ids."""

from typing import Any, ClassVar

from lmforge.data.multimodal.media import DecodedMedia, MediaError
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

    def position_ids(self, input_ids: list[int], processed: ProcessedMedia, processor: Any,
                     model_config: Any = None) -> Any:
        import torch

        types = self.token_type_ids(torch.as_tensor(input_ids), processor.tokenizer).tolist()
        images = [(t["image_grid_thw"][0], 1.0) for t in processed.tensors.get("images", [])]
        videos = [(t["video_grid_thw"][0], self._time_interval(t, model_config, processed))
                  for t in processed.tensors.get("videos", [])]
        return mrope_position_ids(types, {1: images, 2: videos}, processor.image_processor.merge_size)

    def _time_interval(self, tensors: dict[str, Any], model_config: Any, processed: ProcessedMedia) -> float:
        """Qwen2.5-VL spaces video frames by real time: tokens_per_second x seconds per temporal patch."""
        if "second_per_grid_ts" not in tensors:
            return 1.0  # Qwen2-VL: consecutive temporal positions
        vision = getattr(model_config, "vision_config", None)
        if vision is None:
            raise MediaError("3-D positions of Qwen2.5-VL videos need the model config (tokens_per_second); "
                             "pass `model_config` to the multimodal collator")
        return float(vision.tokens_per_second * tensors["second_per_grid_ts"][0])
