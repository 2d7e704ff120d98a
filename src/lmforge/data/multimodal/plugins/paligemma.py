"""PaliGemma: the image tokens are a prefix of the whole sequence (`<image>` x N per image, then the
template's BOS and the prompt), so placeholders are removed from the text and the tokens prepended.
`token_type_ids` mark the prefix (0: image and prompt, attended bidirectionally) and the answer (1)."""

from typing import Any, ClassVar

from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, register_mm_plugin
from lmforge.data.templates.template import Message


@register_mm_plugin
class PaliGemmaPlugin(MMPlugin):
    name = "paligemma"
    processor_classes = ("PaliGemmaProcessor",)
    markers: ClassVar[dict[str, str]] = {"images": "<image>"}
    media_tokens: ClassVar[dict[str, int]] = {"<image>": 1}
    no_packing_reason = "its bidirectional prefix block would span every packed example"

    def run_text(self, processor: Any, ids: list[int]) -> str:
        image_id = processor.tokenizer.convert_tokens_to_ids("<image>")
        return "<image>" * sum(token == image_id for token in ids)

    def process_messages(self, messages: list[Message], processed: ProcessedMedia, where: str) -> list[Message]:
        removed = ProcessedMedia({kind: [""] * len(runs) for kind, runs in processed.runs.items()}, processed.tensors)
        return super().process_messages(messages, removed, where)

    def process_token_ids(self, input_ids: list[int], labels: list[int], processed: ProcessedMedia,
                          tokenizer: Any) -> tuple[list[int], list[int]]:
        prefix = tokenizer.encode("".join(processed.runs.get("images", [])), add_special_tokens=False)
        return prefix + input_ids, [IGNORE_INDEX] * len(prefix) + labels

    def get_mm_inputs(self, examples: list[ProcessedMedia], batch: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
        import torch

        inputs = super().get_mm_inputs(examples, batch, tokenizer)
        if "labels" in batch:  # 1 from the first supervised token on: the answer part
            inputs["token_type_ids"] = (batch["labels"] != IGNORE_INDEX).long().cummax(dim=1).values
        else:  # a prompt for generation is all prefix
            inputs["token_type_ids"] = torch.zeros_like(batch["input_ids"])
        return inputs
