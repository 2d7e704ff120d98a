"""Voxtral: its processor expands audio only in `apply_chat_template` (through mistral-common's request
encoding, which lmforge's templates do not go through), so each clip's token run is written here as
mistral-common writes it, and its features come from the processor's own feature extractor."""

from typing import Any, ClassVar

from lmforge.data.multimodal.media import DecodedMedia, MediaError
from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin

# mel frames per audio token: the encoder's stride-2 convolution, then the projector stacks 4 frames (12.5 tokens/s)
FRAMES_PER_TOKEN = 8


@register_mm_plugin
class VoxtralPlugin(MMPlugin):
    name = "voxtral"
    processor_classes = ("VoxtralProcessor",)
    markers: ClassVar[dict[str, str]] = {"audios": "[BEGIN_AUDIO]"}
    media_tokens: ClassVar[dict[str, int]] = {"[AUDIO]": 1}

    def process_media(self, processor: Any, media: DecodedMedia, where: str) -> ProcessedMedia:
        processed = ProcessedMedia()
        unsupported = [kind for kind in ("images", "videos") if media.items(kind)]
        if unsupported:
            raise MediaError(f"{where}: has {', '.join(unsupported)}, which `voxtral` models do not take "
                             "(they take audios)")
        # the processor's own defaults: audio padded to whole 30-second windows of `max_source_positions` frames
        options = dict(type(processor).audio_kwargs)
        window = options.pop("max_source_positions")
        options["sampling_rate"] = media.audio_sampling_rate
        runs, tensors = [], []
        for index, clip in enumerate(media.items("audios")):
            try:
                features = processor.feature_extractor(clip, **options)["input_features"]
            except (ValueError, RuntimeError) as err:
                raise MediaError(f"{where}: the Voxtral feature extractor rejected {media.describe('audios', index)}: "
                                 f"{err}") from None
            windows = features.reshape(features.shape[1], -1, window).transpose(0, 1)
            tokens = windows.shape[0] * window // FRAMES_PER_TOKEN
            runs.append(self.markers["audios"] + processor.audio_token * tokens)
            tensors.append({"input_features": windows})
        if runs:
            processed.runs["audios"], processed.tensors["audios"] = runs, tensors
        return processed
