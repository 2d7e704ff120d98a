"""InternVL (transformers-native): `<img>` + `<IMG_CONTEXT>` per token of every crop + `</img>`; videos
become one such run per sampled frame."""

from typing import Any, ClassVar

from lmforge.data.multimodal.media import DecodedMedia
from lmforge.data.multimodal.plugin import MMPlugin, register_mm_plugin


@register_mm_plugin
class InternVLPlugin(MMPlugin):
    name = "intern_vl"
    processor_classes = ("InternVLProcessor",)
    markers: ClassVar[dict[str, str]] = {"images": "<IMG_CONTEXT>", "videos": "<video>"}
    media_tokens: ClassVar[dict[str, int]] = {"<IMG_CONTEXT>": 1}

    def processor_kwargs(self, kind: str, item: Any, media: DecodedMedia, index: int) -> dict[str, Any]:
        if kind == "videos":  # frames are sampled already (video_fps, video_maxlen)
            return {"videos": [item], "do_sample_frames": False}
        return super().processor_kwargs(kind, item, media, index)
