"""Tiny random models of the Qwen-style vision families (patch merging, 3-D M-RoPE, image and video):
Qwen3-VL (+MoE), Qwen3.5 (+MoE), GLM-4.1V / 4.5V (MoE) / 4.6V, ERNIE-4.5-VL (MoE), each with its real processor."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vlm_tokenizer

QWEN_MEDIA = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
              "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}
QWEN_TEMPLATE = chat_template(image="<|vision_start|><|image_pad|><|vision_end|>",
                              video="<|vision_start|><|video_pad|><|vision_end|>")
# 32..64 pixels a side at 16-pixel patches merged 2x2: 1 to 4 tokens per image or frame pair
QWEN3_SIZES = {"size": {"shortest_edge": 32 * 32, "longest_edge": 64 * 64}, "patch_size": 16}


def _qwen_ids(tokenizer: Any) -> dict[str, int]:
    return {"image_token_id": tokenizer.image_token_id, "video_token_id": tokenizer.video_token_id,
            "vision_start_token_id": tokenizer.vision_start_token_id,
            "vision_end_token_id": tokenizer.vision_end_token_id}


def _qwen3_vision(**overrides: Any) -> dict[str, Any]:
    return {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
            "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 16,
            **overrides}


def _qwen3_processor(tokenizer: Any) -> Any:
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    return Qwen3VLProcessor(image_processor=Qwen2VLImageProcessor(**QWEN3_SIZES), tokenizer=tokenizer,
                            video_processor=Qwen3VLVideoProcessor(**QWEN3_SIZES), chat_template=QWEN_TEMPLATE)


MROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True}


def qwen3_vl(moe: bool = False) -> tuple[Any, Any]:
    from transformers import Qwen3VLConfig, Qwen3VLMoeConfig

    tokenizer = tiny_vlm_tokenizer(QWEN_MEDIA, template=QWEN_TEMPLATE)
    text = tiny_text(tokenizer, rope_parameters=MROPE)
    if moe:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, decoder_sparse_step=1)
    config_class = Qwen3VLMoeConfig if moe else Qwen3VLConfig
    config = config_class(text_config=text, vision_config=_qwen3_vision(deepstack_visual_indexes=[0]),
                          **_qwen_ids(tokenizer))
    return config, _qwen3_processor(tokenizer)


def qwen3_5(moe: bool = False) -> tuple[Any, Any]:
    from transformers import Qwen3_5Config, Qwen3_5MoeConfig

    tokenizer = tiny_vlm_tokenizer(QWEN_MEDIA, template=QWEN_TEMPLATE)
    # one linear-attention (Gated DeltaNet) layer and one full-attention layer
    text = tiny_text(tokenizer, rope_parameters={**MROPE, "partial_rotary_factor": 1.0},
                     layer_types=["linear_attention", "full_attention"], linear_key_head_dim=16,
                     linear_value_head_dim=16, linear_num_key_heads=2, linear_num_value_heads=4)
    if moe:
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                    shared_expert_intermediate_size=32)
    config_class = Qwen3_5MoeConfig if moe else Qwen3_5Config
    config = config_class(text_config=text, vision_config=_qwen3_vision(), **_qwen_ids(tokenizer))
    return config, _qwen3_processor(tokenizer)


def glm4v(version: str = "glm4v") -> tuple[Any, Any]:
    import transformers

    tokens = {"image_token": "<|image|>", "video_token": "<|video|>"}
    extra = ("<|begin_of_image|>", "<|end_of_image|>", "<|begin_of_video|>", "<|end_of_video|>")
    template = chat_template(image="<|begin_of_image|><|image|><|end_of_image|>",
                             video="<|begin_of_video|><|video|><|end_of_video|>")
    tokenizer = tiny_vlm_tokenizer(tokens, extra=extra, template=template)
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in (
        ("image_token_id", "<|image|>"), ("video_token_id", "<|video|>"),
        ("image_start_token_id", "<|begin_of_image|>"), ("image_end_token_id", "<|end_of_image|>"),
        ("video_start_token_id", "<|begin_of_video|>"), ("video_end_token_id", "<|end_of_video|>"))}
    text = tiny_text(tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                 "mrope_section": [2, 3, 3], "partial_rotary_factor": 1.0})
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "image_size": 56}
    if version == "glm4v_moe":
        text.update(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, n_shared_experts=1,
                    first_k_dense_replace=1, n_group=1, topk_group=1)
    config_class = {"glm4v": "Glm4vConfig", "glm4v_moe": "Glm4vMoeConfig", "glm46v": "Glm46VConfig"}[version]
    config = getattr(transformers, config_class)(text_config=text, vision_config=vision, **ids)
    sizes = {"size": {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}, "patch_size": 14}
    processor_class = "Glm46VProcessor" if version == "glm46v" else "Glm4vProcessor"
    image_processor = getattr(transformers, "Glm46VImageProcessor" if version == "glm46v" else "Glm4vImageProcessor")
    video_processor = getattr(transformers, "Glm46VVideoProcessor" if version == "glm46v" else "Glm4vVideoProcessor")
    processor = getattr(transformers, processor_class)(
        image_processor=image_processor(**sizes), tokenizer=tokenizer, video_processor=video_processor(**sizes),
        chat_template=template)
    return config, processor


def ernie4_5_vl() -> tuple[Any, Any]:
    from transformers import (
        Ernie4_5_VLMoeConfig,
        Ernie4_5_VLMoeImageProcessor,
        Ernie4_5_VLMoeProcessor,
        Ernie4_5_VLMoeVideoProcessor,
    )

    tokens = {"image_token": "<|IMAGE_PLACEHOLDER|>", "image_start_token": "<|IMAGE_START|>",
              "image_end_token": "<|IMAGE_END|>", "video_token": "<|VIDEO_PLACEHOLDER|>",
              "video_start_token": "<|VIDEO_START|>", "video_end_token": "<|VIDEO_END|>"}
    template = chat_template(image="<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>",
                             video="<|VIDEO_START|><|VIDEO_PLACEHOLDER|><|VIDEO_END|>")
    tokenizer = tiny_vlm_tokenizer(tokens, template=template)
    # one dense layer, then one with text and vision experts
    text = tiny_text(tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                 "mrope_section": [3, 3, 2]},
                     moe_intermediate_size=[32, 32], moe_num_experts=4, moe_k=2, moe_num_shared_experts=1,
                     mlp_layer_types=["dense", "sparse"])
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "patch_size": 14,
              "spatial_merge_size": 2, "temporal_merge_size": 2}
    config = Ernie4_5_VLMoeConfig(text_config=text, vision_config=vision,
                                  **{f"{name}_id": getattr(tokenizer, f"{name}_id") for name in tokens})
    sizes = {"size": {"shortest_edge": 28 * 28, "longest_edge": 56 * 56}, "patch_size": 14}
    # no timestamps drawn on video frames: that needs a font file from the hub
    processor = Ernie4_5_VLMoeProcessor(image_processor=Ernie4_5_VLMoeImageProcessor(**sizes), tokenizer=tokenizer,
                                        video_processor=Ernie4_5_VLMoeVideoProcessor(draw_on_frames=False, **sizes),
                                        chat_template=template)
    return config, processor


QWEN_STYLE_FAMILIES = {
    "qwen3_vl": qwen3_vl,
    "qwen3_vl_moe": lambda: qwen3_vl(moe=True),
    "qwen3_5": qwen3_5,
    "qwen3_5_moe": lambda: qwen3_5(moe=True),
    "glm4v": glm4v,
    "glm4v_moe": lambda: glm4v("glm4v_moe"),
    "glm46v": lambda: glm4v("glm46v"),
    "ernie4_5_vl": ernie4_5_vl,
}
