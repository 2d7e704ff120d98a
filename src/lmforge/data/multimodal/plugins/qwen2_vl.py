"""Qwen2-VL and Qwen2.5-VL: the processor-native plugin plus what their processor does not do: the
3-D M-RoPE position ids of each example, which packed rows need (the model derives them per row)."""

from typing import Any, ClassVar

from lmforge.data.multimodal.media import MediaError
from lmforge.data.multimodal.mrope import mrope_position_ids
from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin
from lmforge.data.multimodal.plugins.native import NativePlugin


@register_mm_plugin
class Qwen2VLPlugin(NativePlugin):
    name = "qwen2_vl"
    processor_classes = ("Qwen2VLProcessor", "Qwen2_5_VLProcessor")
    fallback = False
    computes_positions = True  # position_ids below keep packed examples apart
    # what Qwen2-VL's chat template writes; a bound instance reads them from its processor's template
    markers: ClassVar[dict[str, str]] = {"images": "<|vision_start|><|image_pad|><|vision_end|>",
                                         "videos": "<|vision_start|><|video_pad|><|vision_end|>"}

    def __init__(self, processor: Any = None) -> None:
        super().__init__(processor)
        self.name = "qwen2_vl"

    def for_processor(self, processor: Any) -> MMPlugin | None:
        return Qwen2VLPlugin(processor) if type(processor).__name__ in self.processor_classes else None

    def position_ids(self, input_ids: list[int], processed: ProcessedMedia, processor: Any,
                     model_config: Any = None) -> Any:
        # the processor's own types (create_mm_token_type_ids: video over image), by a lookup per token: its numpy
        # round trip per example cost more than the positions themselves
        kinds = {token: kind for kind, tokens in ((1, processor.image_token_ids), (2, processor.video_token_ids))
                 for token in tokens if token is not None}
        types = [kinds.get(token, 0) for token in input_ids]
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
