"""Tiny random models of the vision and audio families transformers 5.25 added last, each with its real processor:
Molmo2 (images and videos)."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vlm_tokenizer

MOLMO2_TOKENS = ("<im_patch>", "<im_col>", "<im_start>", "<low_res_im_start>", "<frame_start>", "<im_end>",
                 "<frame_end>", "<im_low>")


def molmo2() -> tuple[Any, Any]:
    from transformers import Molmo2Config, Molmo2ImageProcessor, Molmo2Processor, Molmo2VideoProcessor

    template = chat_template(image="<|image|>", video="<|video|>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image|>", "video_token": "<|video|>"}, extra=MOLMO2_TOKENS,
                                   template=template)
    ids = dict(zip(("image_patch_id", "image_start_token_id", "low_res_image_start_token_id", "image_end_token_id",
                    "frame_start_token_id", "frame_end_token_id"),
                   tokenizer.convert_tokens_to_ids(["<im_patch>", "<im_start>", "<low_res_im_start>", "<im_end>",
                                                    "<frame_start>", "<frame_end>"]), strict=True))
    # 56-pixel crops of 4x4 patches (one patch of overlap each side), pooled 2x2 by attention over the last layer
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
              "num_key_value_heads": 2, "head_dim": 16, "image_size": [56, 56], "patch_size": 14}
    adapter = {"vision_feature_layer": [-1], "hidden_size": 32, "num_attention_heads": 2, "num_key_value_heads": 2,
               "head_dim": 16, "intermediate_size": 64, "text_hidden_size": 64}
    text = tiny_text(tokenizer, additional_vocab_size=0)
    config = Molmo2Config(text_config=text, vision_config=vision, adapter_config=adapter, **ids)
    image_processor = Molmo2ImageProcessor(size={"height": 56, "width": 56}, max_crops=2, overlap_margins=[1, 1])
    video_processor = Molmo2VideoProcessor(size={"height": 56, "width": 56}, pooling_size=[2, 2])
    processor = Molmo2Processor(image_processor=image_processor, video_processor=video_processor,
                                tokenizer=tokenizer, chat_template=template)
    return config, processor


LATEST_FAMILIES = {
    "molmo2": molmo2,
}
