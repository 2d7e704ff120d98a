"""Tiny random "omni" models (image, video and audio in one model) with their real processor:
Qwen2.5-Omni and Qwen3-Omni. Only the thinker (the text generator lmforge trains) is built; a whole omni
checkpoint also carries a talker and a vocoder, which `lmforge` drops when it loads one."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vlm_tokenizer

OMNI_MEDIA = {"image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>", "audio_token": "<|AUDIO|>",
              "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
              "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>"}
OMNI_TEMPLATE = chat_template(image="<|vision_bos|><|IMAGE|><|vision_eos|>",
                              video="<|vision_bos|><|VIDEO|><|vision_eos|>",
                              audio="<|audio_bos|><|AUDIO|><|audio_eos|>")
# Whisper layout, shrunk: 8 mel bins, 4-second windows
OMNI_AUDIO = {"num_mel_bins": 8, "d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2,
              "encoder_ffn_dim": 64, "max_source_positions": 200, "n_window": 50, "output_dim": 64}
MROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}


def _omni_ids(tokenizer: Any) -> dict[str, int]:
    ids = {"audio_token_index": tokenizer.audio_token_id, "image_token_index": tokenizer.image_token_id,
           "video_token_index": tokenizer.video_token_id,
           "audio_start_token_id": tokenizer.audio_bos_token_id, "audio_end_token_id": tokenizer.audio_eos_token_id,
           "vision_start_token_id": tokenizer.vision_bos_token_id, "vision_end_token_id": tokenizer.vision_eos_token_id,
           "user_token_id": tokenizer.convert_tokens_to_ids("user")}
    return ids


def _omni_processors(processor_class: Any, tokenizer: Any, patch_size: int) -> Any:
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor, WhisperFeatureExtractor

    # 2..4 patches a side merged 2x2: 1 to 4 tokens per image or frame pair
    sizes = {"size": {"shortest_edge": (2 * patch_size) ** 2, "longest_edge": (4 * patch_size) ** 2},
             "patch_size": patch_size}
    return processor_class(image_processor=Qwen2VLImageProcessor(**sizes),
                           video_processor=Qwen2VLVideoProcessor(**sizes),
                           feature_extractor=WhisperFeatureExtractor(feature_size=8, sampling_rate=16000,
                                                                     chunk_length=4),
                           tokenizer=tokenizer, chat_template=OMNI_TEMPLATE)


def qwen2_5_omni() -> tuple[Any, Any]:
    from transformers import Qwen2_5OmniProcessor, Qwen2_5OmniThinkerConfig

    tokenizer = tiny_vlm_tokenizer(OMNI_MEDIA, template=OMNI_TEMPLATE)
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
              "fullatt_block_indexes": [0]}
    config = Qwen2_5OmniThinkerConfig(text_config=tiny_text(tokenizer, rope_parameters=MROPE),
                                      vision_config=vision, audio_config=OMNI_AUDIO, **_omni_ids(tokenizer))
    return config, _omni_processors(Qwen2_5OmniProcessor, tokenizer, 14)


def qwen3_omni() -> tuple[Any, Any]:
    from transformers import Qwen3OmniMoeProcessor, Qwen3OmniMoeThinkerConfig

    tokenizer = tiny_vlm_tokenizer(OMNI_MEDIA, template=OMNI_TEMPLATE)
    text = tiny_text(tokenizer, rope_parameters={**MROPE, "mrope_interleaved": True}, num_experts=4,
                     num_experts_per_tok=2, moe_intermediate_size=32, decoder_sparse_step=1)
    vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 16, "spatial_merge_size": 2, "temporal_patch_size": 2, "num_position_embeddings": 16,
              "deepstack_visual_indexes": [0]}
    # the processor counts audio tokens with the released 100-frame chunks (n_window 50)
    audio = {**OMNI_AUDIO, "n_window": 50, "n_window_infer": 400, "downsample_hidden_size": 16}
    ids = _omni_ids(tokenizer)
    config = Qwen3OmniMoeThinkerConfig(
        text_config=text, vision_config=vision, audio_config=audio, audio_token_id=ids["audio_token_index"],
        image_token_id=ids["image_token_index"], video_token_id=ids["video_token_index"],
        audio_start_token_id=ids["audio_start_token_id"], user_token_id=ids["user_token_id"],
        vision_start_token_id=ids["vision_start_token_id"])
    return config, _omni_processors(Qwen3OmniMoeProcessor, tokenizer, 16)


OMNI_FAMILIES = {
    "qwen2_5_omni": qwen2_5_omni,
    "qwen3_omni": qwen3_omni,
}
