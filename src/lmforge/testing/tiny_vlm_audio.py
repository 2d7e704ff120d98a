"""Tiny random audio-language models with their real processor: Phi-4-multimodal (images and audio)."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vlm_tokenizer


def phi4_multimodal() -> tuple[Any, Any]:
    from transformers import (
        Phi4MultimodalConfig,
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalImageProcessor,
        Phi4MultimodalProcessor,
    )

    template = chat_template(image="<|image|>", audio="<|audio|>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image|>", "audio_token": "<|audio|>"}, template=template)
    # the processor counts image tokens for the released 448-pixel crops (32x32 patches pooled to 16x16): a
    # one-layer tower of that size, one crop per image beside the global view
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 448, "crop_size": 448, "patch_size": 14, "feature_layer": -1,
              "image_token_id": tokenizer.image_token_id}
    # a one-block Conformer on the released 80 mel bins, 8x time reduction
    audio = {"hidden_size": 32, "intermediate_size": 64, "num_blocks": 1, "num_attention_heads": 2,
             "ext_pw_out_channel": 32, "depthwise_separable_out_channel": 32, "nemo_conv_channels": 32,
             "feature_layer": -1, "audio_token_id": tokenizer.audio_token_id}
    text = tiny_text(tokenizer)
    text.pop("head_dim")
    config = Phi4MultimodalConfig(**text, vision_config=vision, audio_config=audio)
    processor = Phi4MultimodalProcessor(
        image_processor=Phi4MultimodalImageProcessor(dynamic_hd=1),
        audio_processor=Phi4MultimodalFeatureExtractor(), tokenizer=tokenizer, chat_template=template)
    return config, processor


AUDIO_LM_FAMILIES = {
    "phi4_multimodal": phi4_multimodal,
}
