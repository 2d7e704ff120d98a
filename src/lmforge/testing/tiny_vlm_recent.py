"""Tiny random models of the vision and audio families newer transformers releases added, each with its real
processor: Command A Vision (Cohere2-Vision)."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vit, tiny_vlm_tokenizer

SIGLIP = {"model_type": "siglip_vision_model", "image_size": 28, **tiny_vit()}


def cohere2_vision() -> tuple[Any, Any]:
    from transformers import Cohere2VisionConfig, Cohere2VisionImageProcessor, Cohere2VisionProcessor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>", "boi_token": "<|START_OF_IMG|>",
                                    "eoi_token": "<|END_OF_IMG|>", "img_line_break_token": "<|IMG_LINE_BREAK|>"},
                                   template=template)
    config = Cohere2VisionConfig(text_config={"model_type": "cohere2", **tiny_text(tokenizer), "sliding_window": 64},
                                 vision_config=SIGLIP, image_token_id=tokenizer.image_token_id, downsample_factor=2,
                                 alignment_intermediate_size=64)
    # 28-pixel tiles of 2x2 patches, pixel-shuffled 2x: one token per tile (the processor's `patch_size` is the
    # tokens a side of one tile), at most 2 tiles and the thumbnail
    image_processor = Cohere2VisionImageProcessor(size={"height": 28, "width": 28}, max_patches=2, patch_size=1)
    processor = Cohere2VisionProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    return config, processor


RECENT_FAMILIES = {
    "cohere2_vision": cohere2_vision,
}
