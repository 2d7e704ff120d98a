"""Qwen2-Audio: `<|audio_bos|>` + one `<|AUDIO|>` per encoder frame of the clip + `<|audio_eos|>`;
`input_features` (log-mel) and `feature_attention_mask` per clip."""

from typing import Any, ClassVar

from lmforge.data.multimodal.media import DecodedMedia
from lmforge.data.multimodal.plugin import MMPlugin, register_mm_plugin


@register_mm_plugin
class Qwen2AudioPlugin(MMPlugin):
    name = "qwen2_audio"
    processor_classes = ("Qwen2AudioProcessor",)
    markers: ClassVar[dict[str, str]] = {"audios": "<|audio_bos|><|AUDIO|><|audio_eos|>"}
    media_tokens: ClassVar[dict[str, int]] = {"<|AUDIO|>": 1}

    def processor_kwargs(self, kind: str, item: Any, media: DecodedMedia, index: int) -> dict[str, Any]:
        return {"audio": [item], "sampling_rate": media.audio_sampling_rate}
