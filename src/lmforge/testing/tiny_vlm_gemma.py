"""Tiny random models of the Gemma 3n and Gemma 4 families, each with its real processor (image and audio)."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vlm_tokenizer

# Gemma 3n's vision tower is timm's MobileNetV5 encoder at 1/16 of its width (7M parameters: the attention heads
# and the 2048-wide output keep their size), fused to 2x2 soft tokens. Its blocks cannot be shrunk through the
# config: timm edits a `block_args` it is given in place, so the saved config would not load again.
MOBILENET_V5_TINY = {"channel_multiplier": 0.0625, "msfa_output_resolution": 2}


def gemma3n() -> tuple[Any, Any]:
    from transformers import Gemma3nAudioFeatureExtractor, Gemma3nConfig, Gemma3nProcessor, SiglipImageProcessor

    template = chat_template(image="<image_soft_token>", audio="<audio_soft_token>")
    # the order matters: the model embeds ids from `<end_of_image>` on with its vision, then audio, embedders
    tokenizer = tiny_vlm_tokenizer({"boi_token": "<start_of_image>", "boa_token": "<start_of_audio>",
                                    "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>",
                                    "eoa_token": "<end_of_audio>", "audio_token": "<audio_soft_token>"},
                                   template=template)
    vision_offset, audio_offset = tokenizer.eoi_token_id, tokenizer.eoa_token_id
    text = tiny_text(tokenizer, vocab_size_per_layer_input=vision_offset, hidden_size_per_layer_input=8,
                     altup_num_inputs=2, num_kv_shared_layers=0, laurel_rank=4, sliding_window=64,
                     layer_types=["sliding_attention", "full_attention"], activation_sparsity_pattern=[0.0, 0.0])
    vision = {"architecture": "mobilenetv5_300m_enc", "hidden_size": 2048, "vocab_size": 2,
              "vocab_offset": vision_offset,
              "model_args": MOBILENET_V5_TINY}
    # 30 seconds of 16 kHz audio -> 3000 mel frames -> 188 tokens after the 16x subsampling, as in the real model
    audio = {"input_feat_size": 16, "hidden_size": 32, "conf_num_attention_heads": 2, "conf_num_hidden_layers": 1,
             "sscp_conv_channel_size": [8, 4], "vocab_size": 2, "vocab_offset": audio_offset}
    config = Gemma3nConfig(text_config=text, vision_config=vision, audio_config=audio,
                           vision_soft_tokens_per_image=4, audio_soft_tokens_per_image=188,
                           boi_token_id=tokenizer.boi_token_id, eoi_token_id=tokenizer.eoi_token_id,
                           image_token_id=tokenizer.image_token_id, boa_token_id=tokenizer.boa_token_id,
                           eoa_token_id=tokenizer.eoa_token_id, audio_token_id=tokenizer.audio_token_id)
    image_processor = SiglipImageProcessor(size={"height": 64, "width": 64})
    features = Gemma3nAudioFeatureExtractor(feature_size=16)
    processor = Gemma3nProcessor(feature_extractor=features, image_processor=image_processor, tokenizer=tokenizer,
                                 image_seq_length=4, audio_seq_length=188, chat_template=template)
    return config, processor


def gemma4() -> tuple[Any, Any]:
    from transformers import (
        Gemma4AudioFeatureExtractor,
        Gemma4Config,
        Gemma4ImageProcessor,
        Gemma4Processor,
        Gemma4VideoProcessor,
    )

    template = chat_template(image="<|image|>", video="<|video|>", audio="<|audio|>")
    # `<|video|>` is added here: the processor would add it to the tokenizer itself, past the model's vocabulary
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image|>", "boi_token": "<|image>", "eoi_token": "<image|>",
                                    "audio_token": "<|audio|>", "boa_token": "<|audio>", "eoa_token": "<audio|>"},
                                   extra=("<|video|>",), template=template)
    # the large models' layout (26B / 31B): images attend to themselves both ways; per-layer inputs as in E2B / E4B
    text = tiny_text(tokenizer, hidden_size_per_layer_input=8, vocab_size_per_layer_input=len(tokenizer),
                     sliding_window=64, layer_types=["sliding_attention", "full_attention"],
                     use_bidirectional_attention="vision")
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "num_key_value_heads": 2, "head_dim": 16, "patch_size": 4, "pooling_kernel_size": 3,
              "position_embedding_size": 256}
    # the subsampler reads as many mel bins as its first conv has channels (8)
    audio = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "subsampling_conv_channels": [8, 4],
             "output_proj_dims": 32}
    config = Gemma4Config(text_config=text, vision_config=vision, audio_config=audio,
                          boi_token_id=tokenizer.boi_token_id, eoi_token_id=tokenizer.eoi_token_id,
                          image_token_id=tokenizer.image_token_id,
                          video_token_id=tokenizer.convert_tokens_to_ids("<|video|>"),
                          boa_token_id=tokenizer.boa_token_id, eoa_token_index=tokenizer.eoa_token_id,
                          audio_token_id=tokenizer.audio_token_id)
    # 4-pixel patches pooled 3x3: the smallest budget the processor takes (70 tokens) is a ~100-pixel image
    sizes = {"patch_size": 4, "pooling_kernel_size": 3, "max_soft_tokens": 70}
    processor = Gemma4Processor(feature_extractor=Gemma4AudioFeatureExtractor(feature_size=8),
                                image_processor=Gemma4ImageProcessor(**sizes),
                                video_processor=Gemma4VideoProcessor(**sizes), tokenizer=tokenizer,
                                image_seq_length=70, chat_template=template)
    return config, processor


GEMMA_FAMILIES = {
    "gemma3n": gemma3n,
    "gemma4": gemma4,
}
