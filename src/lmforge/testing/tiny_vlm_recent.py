"""Tiny random models of the vision and audio families newer transformers releases added, each with its real
processor: Command A Vision (Cohere2-Vision), LFM3-VL."""

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


def lfm3_vl() -> tuple[Any, Any]:
    from transformers import Lfm3VlConfig, Lfm3VlProcessor, Qwen2VLImageProcessor, Qwen3VLVideoProcessor

    from lmforge.testing.tiny_vlm_qwen import QWEN3_SIZES, QWEN_MEDIA, QWEN_TEMPLATE, _qwen_ids

    tokenizer = tiny_vlm_tokenizer(QWEN_MEDIA, template=QWEN_TEMPLATE)
    # one short-convolution layer and one sliding-window attention layer, in the text model and the vision tower
    text = {"model_type": "lfm3", **tiny_text(tokenizer), "layer_types": ["conv", "sliding_attention"],
            "sliding_window": 64}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 2, "layer_types": ["conv", "full_attention"], "patch_size": 16}
    config = Lfm3VlConfig(text_config=text, vision_config=vision, projector_hidden_size=64, **_qwen_ids(tokenizer))
    processor = Lfm3VlProcessor(image_processor=Qwen2VLImageProcessor(**QWEN3_SIZES), tokenizer=tokenizer,
                                video_processor=Qwen3VLVideoProcessor(**QWEN3_SIZES), chat_template=QWEN_TEMPLATE)
    return config, processor


RECENT_FAMILIES = {
    "cohere2_vision": cohere2_vision,
    "lfm3_vl": lfm3_vl,
}
