"""Molmo2: the native plugin plus the BOS its processor writes before every text it is given (the checkpoints'
chat templates write none), so each example starts with it as the model was trained, and one item's expansion
is read without it."""

from typing import Any, ClassVar

from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin
from lmforge.data.multimodal.plugins.native import NativePlugin


def _bos(tokenizer: Any) -> str:
    return tokenizer.bos_token or tokenizer.eos_token  # the processor's own choice


@register_mm_plugin
class Molmo2Plugin(NativePlugin):
    name = "molmo2"
    processor_classes = ("Molmo2Processor",)
    fallback = False
    markers: ClassVar[dict[str, str]] = {"images": "<|image|>", "videos": "<|video|>"}  # bound: the processor's

    def __init__(self, processor: Any = None) -> None:
        super().__init__(processor)
        self.name = "molmo2"

    def for_processor(self, processor: Any) -> MMPlugin | None:
        return Molmo2Plugin(processor) if type(processor).__name__ in self.processor_classes else None

    def _expanded(self, kind: str, out: Any) -> str | None:
        """The processor reports the replacement's span in the text it prepended its BOS to."""
        offsets = out.get("text_replacement_offsets")
        if offsets and offsets[0]:
            shift = len(_bos(self.processor.tokenizer))
            for found in offsets[0]:
                found["span"] = (found["span"][0] - shift, found["span"][1] - shift)
        return super()._expanded(kind, out)

    def process_token_ids(self, input_ids: list[int], labels: list[int], processed: ProcessedMedia,
                          tokenizer: Any) -> tuple[list[int], list[int]]:
        bos = tokenizer.convert_tokens_to_ids(_bos(tokenizer))
        if input_ids[:1] == [bos]:
            return input_ids, labels
        return [bos, *input_ids], [IGNORE_INDEX, *labels]
