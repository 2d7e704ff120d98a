"""Mllama (Llama 3.2 Vision): one `<|image|>` token per image; the text attends to the image tiles
through cross-attention, so the batch carries per-example image stacks and a cross-attention mask
(each image is seen by the tokens from its `<|image|>` up to the next image or the end)."""

from typing import Any, ClassVar

from lmforge.data.multimodal.plugin import MMPlugin, ProcessedMedia, concat_padded, register_mm_plugin


@register_mm_plugin
class MllamaPlugin(MMPlugin):
    name = "mllama"
    processor_classes = ("MllamaProcessor",)
    markers: ClassVar[dict[str, str]] = {"images": "<|image|>"}
    media_tokens: ClassVar[dict[str, int]] = {"<|image|>": 1}
    no_packing_reason = "its cross-attention mask is per example, not per packed row"

    def run_text(self, processor: Any, ids: list[int]) -> str:
        return "<|image|>"  # the processor also puts BOS after a leading image; the template owns BOS

    def get_mm_inputs(self, examples: list[ProcessedMedia], batch: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
        import torch
        from transformers.models.mllama.processing_mllama import (
            convert_sparse_cross_attention_mask_to_dense,
            get_cross_attention_token_mask,
        )

        images = [example.tensors.get("images", []) for example in examples]
        if not any(images):
            return {}
        most = max(map(len, images))
        tiles = max(item["aspect_ratio_mask"].shape[-1] for row in images for item in row)

        def stack(key: str, row: list[dict[str, Any]]) -> Any:
            # one example's images, zero-padded to the batch's image and tile counts
            template = next(item[key] for r in images for item in r)[0, :1]
            parts = [item[key][0] for item in row] + [torch.zeros_like(template)] * (most - len(row))
            return concat_padded(parts)

        inputs = {key: torch.stack([stack(key, row) for row in images])
                  for key in ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask")}
        image_id = tokenizer.convert_tokens_to_ids("<|image|>")
        sparse = [get_cross_attention_token_mask(ids.tolist(), image_id) for ids in batch["input_ids"]]
        num_tiles = [[int(item["aspect_ratio_mask"].sum()) for item in row] for row in images]
        dense = convert_sparse_cross_attention_mask_to_dense(sparse, num_tiles, tiles, batch["input_ids"].shape[1])
        inputs["cross_attention_mask"] = torch.as_tensor(dense)
        return inputs
