"""Tiny random models of further vision and audio families, each with its real processor: PaddleOCR-VL,
DeepSeek-VL, Chameleon, Perception LM, Kimi-K2.5."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vit, tiny_vlm_tokenizer


def paddleocr_vl() -> tuple[Any, Any]:
    from transformers import PaddleOCRVLConfig, PaddleOCRVLImageProcessor, PaddleOCRVLProcessor

    template = chat_template(image="<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|IMAGE_PLACEHOLDER|>"}, template=template,
                                   extra=("<|IMAGE_START|>", "<|IMAGE_END|>", "<|video_pad|>"))
    text = tiny_text(tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                 "mrope_section": [2, 3, 3]})
    vision = {**tiny_vit(), "spatial_merge_size": 2, "image_size": 56}
    config = PaddleOCRVLConfig(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id,
                               video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
                               vision_start_token_id=tokenizer.convert_tokens_to_ids("<|IMAGE_START|>"),
                               vision_end_token_id=tokenizer.convert_tokens_to_ids("<|IMAGE_END|>"))
    image_processor = PaddleOCRVLImageProcessor(min_pixels=28 * 28, max_pixels=56 * 56, patch_size=14, merge_size=2)
    processor = PaddleOCRVLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    return config, processor


def deepseek_vl() -> tuple[Any, Any]:
    from transformers import DeepseekVLConfig, DeepseekVLImageProcessor, DeepseekVLProcessor

    template = chat_template(image="<image_placeholder>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image_placeholder>"}, template=template)
    vision = {"model_type": "siglip_vision_model", "image_size": 28, **tiny_vit()}
    config = DeepseekVLConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=vision,
                              image_token_id=tokenizer.image_token_id)
    processor = DeepseekVLProcessor(image_processor=DeepseekVLImageProcessor(size={"height": 28, "width": 28}),
                                    tokenizer=tokenizer, num_image_tokens=4, chat_template=template)
    return config, processor


def chameleon() -> tuple[Any, Any]:
    from transformers import ChameleonConfig, ChameleonImageProcessor, ChameleonProcessor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>", "boi_token": "<racm3:break>",
                                    "eoi_token": "<eoss>"}, template=template)
    # the VQ-VAE image tokenizer turns a 32-pixel image into 4x4 codes, which the decoder reads as tokens
    vq = {"embed_dim": 8, "num_embeddings": 16, "base_channels": 32, "channel_multiplier": [1, 1, 2, 2],
          "num_res_blocks": 1, "latent_channels": 8, "resolution": 32, "attn_resolutions": []}
    # image codes are tokens named IMGIMG<code in letters, A=0 ... J=9>Z
    codes = {"IMGIMG" + "".join(chr(65 + int(digit)) for digit in str(code)) + "Z": len(tokenizer) + code
             for code in range(16)}
    vocabulary = {**tokenizer.get_vocab(), **codes}
    config = ChameleonConfig(**tiny_text(tokenizer, vocab_size=len(tokenizer) + 16), vq_config=vq,
                             vocabulary_map=vocabulary, image_token_id=tokenizer.image_token_id)
    config.head_dim = None
    image_processor = ChameleonImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = ChameleonProcessor(image_processor=image_processor, tokenizer=tokenizer, image_seq_length=16)
    processor.chat_template = template
    return config, processor


def perception_lm() -> tuple[Any, Any]:
    from transformers import (
        PerceptionLMConfig,
        PerceptionLMImageProcessor,
        PerceptionLMProcessor,
        PerceptionLMVideoProcessor,
    )

    template = chat_template(image="<|image|>", video="<|video|>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image|>", "video_token": "<|video|>"}, template=template)
    # the released Perception Encoder (timm's `vit_pe_core`, class token dropped by the model) shrunk to one layer on
    # 32-pixel tiles of 16-pixel patches: 4 tokens per tile, no pooling; an image is its thumbnail plus up to 2 tiles
    vision = {"model_type": "timm_wrapper", "architecture": "vit_pe_core_tiny_patch16_384",
              "model_args": {"embed_dim": 32, "depth": 1, "num_heads": 2, "img_size": 32}}
    config = PerceptionLMConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=vision,
                                image_token_id=tokenizer.image_token_id, video_token_id=tokenizer.video_token_id,
                                projector_pooling_ratio=1)
    sizes = {"size": {"height": 32, "width": 32}}
    processor = PerceptionLMProcessor(
        image_processor=PerceptionLMImageProcessor(tile_size=32, max_num_tiles=2, **sizes),
        video_processor=PerceptionLMVideoProcessor(**sizes), tokenizer=tokenizer, patch_size=16, pooling_ratio=1,
        chat_template=template)
    return config, processor


def kimi_k25() -> tuple[Any, Any]:
    from transformers import Kimi_K25Config, Kimi_K25ImageProcessor, Kimi_K25Processor, Kimi_K25VideoProcessor

    template = chat_template(image="<|media_begin|>image<|media_content|><|media_pad|><|media_end|>",
                             video="<|kimi_k25_video_placeholder|>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|media_pad|>", "video_token": "<|kimi_k25_video_placeholder|>"},
                                   extra=("<|media_begin|>", "<|media_content|>", "<|media_end|>"), template=template)
    # Kimi-K2's decoder (DeepSeek-V3: latent attention, a key/value head per query head, routed experts after one
    # dense layer), shrunk
    text = tiny_text(tokenizer, q_lora_rank=16, kv_lora_rank=16, qk_rope_head_dim=8, qk_nope_head_dim=8,
                     v_head_dim=16, num_key_value_heads=4, n_routed_experts=4, num_experts_per_tok=2,
                     moe_intermediate_size=32, n_shared_experts=1, first_k_dense_replace=1, n_group=1, topk_group=1)
    text.pop("head_dim")
    # MoonViT: 14-pixel patches merged 2x2, on images of at most 56 pixels a side (1 to 4 tokens)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "patch_size": 14, "pos_emb_height": 8, "pos_emb_width": 8}
    config = Kimi_K25Config(text_config={"model_type": "deepseek_v3", **text}, vision_config=vision,
                            projection_hidden_size=32, image_token_id=tokenizer.image_token_id,
                            video_token_id=tokenizer.video_token_id,
                            vision_start_token_id=tokenizer.convert_tokens_to_ids("<|media_begin|>"),
                            vision_end_token_id=tokenizer.convert_tokens_to_ids("<|media_end|>"))
    sizes = {"size": {"max_height": 56, "max_width": 56}}
    processor = Kimi_K25Processor(image_processor=Kimi_K25ImageProcessor(**sizes),
                                  video_processor=Kimi_K25VideoProcessor(**sizes), tokenizer=tokenizer,
                                  chat_template=template)
    return config, processor


EXTRA_FAMILIES = {
    "paddleocr_vl": paddleocr_vl,
    "deepseek_vl": deepseek_vl,
    "chameleon": chameleon,
    "perception_lm": perception_lm,
    "kimi_k25": kimi_k25,
}
