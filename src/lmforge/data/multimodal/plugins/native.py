"""The processor-native plugin: serves every processor that expands its own media tokens.

transformers' processors name the text they expand (`image_token`, `video_token`, `audio_token`),
expand it per item (`replace_image_token`, ...), say which ids are media (`image_token_ids`, ...) and
build the token types their model needs (`create_mm_token_type_ids`, returned as `mm_token_type_ids`,
or `token_type_ids` for Gemma 3). This plugin reads all of that from the processor instance, so a
family that transformers ships needs no lmforge code: our `<image>` / `<video>` / `<audio>`
placeholders become the processor's own tokens, the processor expands them with the media, and the
chat template supervises the answers around them. Hand-written plugins remain for what a processor
does not do (Qwen2-VL's 3-D positions for packed rows, PaliGemma's prefix, Mllama's cross-attention).
"""

from typing import Any

from lmforge.data.multimodal.media import DecodedMedia, MediaError
from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin

MODALITY = {"images": "image", "videos": "video", "audios": "audio"}
SUBPROCESSOR = {"images": "image_processor", "videos": "video_processor", "audios": "_audio_processor"}
TYPE_KEYS = ("mm_token_type_ids", "token_type_ids")
TEXT_OUTPUTS = ("input_ids", "attention_mask", "labels", "text_replacement_offsets")
# processors whose token types their model takes and never reads (Gemma 3n: causal masks, 1-D positions), so
# packed rows stay apart (packability.py; tests/multimodal/test_packing.py)
UNREAD_TOKEN_TYPES = {"Gemma3n"}


def chat_template_marker(processor: Any, kind: str, token: str) -> str:
    """The text the processor's chat template writes for one item of `kind` (Qwen's
    `<|vision_start|><|image_pad|><|vision_end|>`), found by rendering a user turn with and without
    the item; the processor's bare token when there is no chat template or it writes none."""
    from jinja2 import TemplateError as JinjaError
    from transformers.utils.chat_template_utils import render_jinja_template

    template = getattr(processor, "chat_template", None)
    if not isinstance(template, str):
        return token
    text = {"type": "text", "text": "Describe it."}

    def render(content: list[dict[str, str]]) -> str:
        rendered, _ = render_jinja_template([[{"role": "user", "content": content}]], chat_template=template,
                                            **getattr(processor.tokenizer, "special_tokens_map", {}))
        return rendered[0]

    try:
        plain, with_item = render([text]), render([{"type": MODALITY[kind]}, text])
    except (JinjaError, TypeError, ValueError, KeyError, IndexError):
        return token
    start = next((i for i, (a, b) in enumerate(zip(plain, with_item, strict=False)) if a != b), len(plain))
    end = len(with_item) - next((i for i, (a, b) in enumerate(zip(plain[::-1], with_item[::-1], strict=False))
                                 if a != b or len(plain) - i <= start), len(plain) - start)
    marker = with_item[start:end]
    rest = marker.replace(token, "", 1)
    for special in sorted(processor.tokenizer.get_added_vocab(), key=len, reverse=True):
        rest = rest.replace(special, "")
    # the item's token once, wrapped only in special tokens and whitespace (not a moved role header)
    return marker if token in marker and not rest.strip() else token


def _probe_item(kind: str) -> Any:
    """A small synthetic item of `kind`, to see which model inputs the processor returns for it."""
    import numpy as np
    from PIL import Image

    if kind == "audios":
        return np.zeros(16000, dtype=np.float32)
    image = Image.new("RGB", (64, 64), (128, 128, 128))
    return [image, image] if kind == "videos" else image


def _omni(processor: Any) -> bool:
    from transformers.processing_utils import OmniModalProcessorMixin

    return isinstance(processor, OmniModalProcessorMixin)


@register_mm_plugin
class NativePlugin(MMPlugin):
    name = "native"
    fallback = True

    def __init__(self, processor: Any = None) -> None:
        self.processor = processor
        self.family = type(processor).__name__.removesuffix("Processor") if processor is not None else ""
        self.name = self.family or "native"
        if processor is not None:  # the registered instance keeps its class's markers (what `template show` prints)
            self.markers = {kind: chat_template_marker(processor, kind, token) for kind, modality in MODALITY.items()
                            if (token := getattr(processor, f"{modality}_token", None))
                            and getattr(processor, SUBPROCESSOR[kind], None) is not None}
        self.media_tokens = {}
        self.token_type_key: str | None = None
        self.sequence_keys: list[str] = []
        self.token_types_unread = self.family in UNREAD_TOKEN_TYPES
        # Qwen-Omni's processors interleave a video's sound with its frames, and their models place both by time
        self.video_sound = _omni(processor) and {"videos", "audios"} <= set(self.markers)
        if processor is not None and self.markers:
            self._probe()

    def for_processor(self, processor: Any) -> MMPlugin | None:
        bound = NativePlugin(processor)
        return bound if bound.markers else None

    def _probe(self) -> None:
        """Which token types the processor's model takes: one processor call on one synthetic item."""
        kind = next(iter(self.markers))
        media = DecodedMedia(**{kind: [_probe_item(kind)]})
        if kind == "videos":
            media.video_fps = [2.0]
        out = self._call(self.processor, kind, media.items(kind)[0], media, 0)
        self.token_type_key = next((key for key in TYPE_KEYS if key in out and out[key].any()), None)
        # other per-token inputs the processor builds from a whole sequence's ids (ERNIE-4.5-VL's expert routing)
        self.sequence_keys = [key for key in out if key not in TYPE_KEYS
                              and callable(getattr(self.processor, f"create_{key}", None))]

    def _call(self, processor: Any, kind: str, item: Any, media: DecodedMedia, index: int) -> Any:
        return processor(text=[self.markers[kind]], return_tensors="pt", add_special_tokens=False,
                         return_text_replacement_offsets=True, **self.processor_kwargs(kind, item, media, index))

    def processor_kwargs(self, kind: str, item: Any, media: DecodedMedia, index: int) -> dict[str, Any]:
        if kind == "videos":  # frames are sampled already (video_fps, video_maxlen); the metadata says at what rate
            from transformers.video_utils import VideoMetadata

            frames = len(item)
            metadata = VideoMetadata(total_num_frames=frames, fps=media.video_fps[index],
                                     frames_indices=list(range(frames)))
            kwargs = {"videos": [item], "do_sample_frames": False, "video_metadata": [metadata]}
            if _omni(self.processor):  # Qwen-Omni dates its video grids from `fps` (else 2 or 1), not the metadata
                kwargs["fps"] = media.video_fps[index]
            if media.video_audios:  # `use_audio_in_video`: the video's sound, interleaved with its frames
                kwargs.update(audio=[media.video_audios[index]], audio_from_video_indices=[0],
                              load_audio_from_video=True, sampling_rate=media.audio_sampling_rate)
            return kwargs
        if kind == "audios":
            return {"audio": [item], "sampling_rate": media.audio_sampling_rate}
        return {"images": [item]}

    def process_media(self, processor: Any, media: DecodedMedia, where: str) -> ProcessedMedia:
        processed = ProcessedMedia()
        unsupported = [kind for kind in MODALITY if media.items(kind) and kind not in self.markers]
        if unsupported:
            raise MediaError(f"{where}: has {', '.join(unsupported)}, which `{self.name}` models do not take "
                             f"(they take {', '.join(self.markers)})")
        for kind in self.markers:
            runs, tensors = [], []
            for index, item in enumerate(media.items(kind)):
                try:
                    out = self._call(processor, kind, item, media, index)
                except (ValueError, RuntimeError, TypeError) as err:
                    raise MediaError(f"{where}: the {self.family} processor rejected {media.describe(kind, index)}: "
                                     f"{err}") from None
                runs.append(self._expanded(kind, out) or self.run_text(processor, out["input_ids"][0].tolist()))
                tensors.append({key: value.float() if value.is_floating_point() else value  # e.g. Llama 4's bf16
                                for key, value in out.items()
                                if key not in (*TEXT_OUTPUTS, *TYPE_KEYS, *self.sequence_keys)
                                and hasattr(value, "is_floating_point")})
            if runs:
                processed.runs[kind], processed.tensors[kind] = runs, tensors
        return processed

    def _expanded(self, kind: str, out: Any) -> str | None:
        """The marker with the processor's own replacement text in place of its token (None when the
        processor does not report replacements: then its ids are decoded)."""
        offsets = out.get("text_replacement_offsets")
        if not offsets or not offsets[0]:
            return None
        [found] = offsets[0]
        start, end = found["span"]
        marker = self.markers[kind]
        return marker[:start] + found["replacement"] + marker[end:]

    def get_mm_inputs(self, examples: list[ProcessedMedia], batch: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
        import torch

        inputs = super().get_mm_inputs(examples, batch, tokenizer)
        if any("input_features" in item for example in examples for item in example.tensors.get("videos", [])):
            inputs["use_audio_in_video"] = True  # the model's 3-D positions then follow the interleaved runs
        for key in self.sequence_keys:
            inputs[key] = torch.as_tensor(getattr(self.processor, f"create_{key}")(batch["input_ids"].tolist()),
                                          dtype=torch.long)
        return inputs

    def token_type_ids(self, input_ids: Any, tokenizer: Any) -> Any:
        import torch

        return torch.as_tensor(self.processor.create_mm_token_type_ids(input_ids.tolist()), dtype=torch.long)

    def media_token_ids(self, tokenizer: Any) -> set[int]:
        ids = {token_id for modality in MODALITY.values()
               for token_id in [*(getattr(self.processor, f"{modality}_token_ids", None) or []),
                                getattr(self.processor, f"{modality}_token_id", None)]
               if isinstance(token_id, int)}
        tokens = {tokenizer.convert_tokens_to_ids(getattr(self.processor, f"{MODALITY[kind]}_token"))
                  for kind in self.markers}
        return {token for token in ids | tokens if token != tokenizer.unk_token_id}
