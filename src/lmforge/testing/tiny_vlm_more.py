"""Tiny random models of the Idefics-style families (image splitting, pixel shuffle / perceiver) and of
Janus, each with its real processor: Idefics2, Idefics3, SmolVLM, LFM2-VL, Janus."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vlm_tokenizer

IDEFICS_VISION = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                  "image_size": 28, "patch_size": 14}


def idefics2() -> tuple[Any, Any]:
    from transformers import Idefics2Config, Idefics2ImageProcessor, Idefics2Processor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>", "image_boundary_token": "<fake_token_around_image>"},
                                   extra=("<end_of_utterance>",), template=template)
    # a perceiver resamples each 28-pixel image (4 patches) into 2 latents, the tokens the text sees
    perceiver = {"hidden_size": 64, "resampler_n_latents": 2, "resampler_depth": 1, "resampler_n_heads": 2,
                 "resampler_head_dim": 16, "num_key_value_heads": 1}
    config = Idefics2Config(text_config={"model_type": "mistral", **tiny_text(tokenizer)},
                            vision_config=IDEFICS_VISION, perceiver_config=perceiver,
                            image_token_id=tokenizer.image_token_id)
    image_processor = Idefics2ImageProcessor(size={"shortest_edge": 28, "longest_edge": 28})
    processor = Idefics2Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=2,
                                  chat_template=template)
    return config, processor


def idefics3() -> tuple[Any, Any]:
    from transformers import Idefics3Config, Idefics3ImageProcessor, Idefics3Processor

    template = chat_template(image="<image>")
    rows = tuple(f"<row_{row}_col_{col}>" for row in range(1, 4) for col in range(1, 4))
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"}, template=template,
                                   extra=("<fake_token_around_image>", "<global-img>", "<end_of_utterance>", *rows))
    config = Idefics3Config(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=IDEFICS_VISION,
                            image_token_id=tokenizer.image_token_id, scale_factor=2)
    # 28-pixel tiles (2x2 patches, pixel-shuffled 2x: one token each), images split at most 2x2 + the global view
    image_processor = Idefics3ImageProcessor(size={"longest_edge": 56}, max_image_size={"longest_edge": 28})
    processor = Idefics3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_len=1,
                                  chat_template=template)
    return config, processor


def smolvlm() -> tuple[Any, Any]:
    from transformers import SmolVLMConfig, SmolVLMImageProcessor, SmolVLMProcessor, SmolVLMVideoProcessor

    # SmolVLM2's chat template writes `<image>` / `<video>`; its processor expands a video into timestamped frames
    template = chat_template(image="<image>", video="<video>")
    rows = tuple(f"<row_{row}_col_{col}>" for row in range(1, 4) for col in range(1, 4))
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>", "video_token": "<video>"}, template=template,
                                   extra=("<fake_token_around_image>", "<global-img>", "<end_of_utterance>", *rows))
    config = SmolVLMConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=IDEFICS_VISION,
                           image_token_id=tokenizer.image_token_id, scale_factor=2)
    # as Idefics3: 28-pixel tiles of one token, at most 2x2 + the global view; video frames are one 28-pixel view
    image_processor = SmolVLMImageProcessor(size={"longest_edge": 56}, max_image_size={"longest_edge": 28})
    video_processor = SmolVLMVideoProcessor(size={"longest_edge": 28}, max_image_size={"longest_edge": 28})
    processor = SmolVLMProcessor(image_processor=image_processor, video_processor=video_processor,
                                 tokenizer=tokenizer, image_seq_len=1, chat_template=template)
    return config, processor


def lfm2_vl() -> tuple[Any, Any]:
    from transformers import Lfm2VlConfig, Lfm2VlImageProcessor, Lfm2VlProcessor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"}, template=template,
                                   extra=("<|image_start|>", "<|image_end|>", "<|img_thumbnail|>"))
    text = {"model_type": "lfm2", **tiny_text(tokenizer), "layer_types": ["conv", "full_attention"]}
    vision = {"model_type": "siglip2_vision_model", "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 14, "num_patches": 64}
    config = Lfm2VlConfig(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id,
                          projector_hidden_size=64, downsample_factor=2)
    image_processor = Lfm2VlImageProcessor(encoder_patch_size=14, tile_size=28, min_image_tokens=1,
                                           max_image_tokens=16, max_num_patches=64, do_image_splitting=False,
                                           downsample_factor=2)
    processor = Lfm2VlProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    return config, processor


def janus() -> tuple[Any, Any]:
    from transformers import JanusConfig, JanusImageProcessor, JanusProcessor

    template = chat_template(image="<image_placeholder>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image_placeholder>", "boi_token": "<begin_of_image>",
                                    "eoi_token": "<end_of_image>"}, template=template)
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "image_size": 28, "patch_size": 14, "projection_dim": 64, "num_image_tokens": 4}
    vq = {"embed_dim": 8, "num_embeddings": 32, "base_channels": 32, "channel_multiplier": [1, 1],
          "num_res_blocks": 1, "latent_channels": 8, "projection_dim": 64, "image_token_embed_dim": 64,
          "num_patches": 2}
    config = JanusConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=vision,
                         vq_config=vq, image_token_id=tokenizer.image_token_id)
    image_processor = JanusImageProcessor(size={"height": 28, "width": 28}, min_size=14)
    processor = JanusProcessor(image_processor=image_processor, tokenizer=tokenizer, num_image_tokens=4,
                               chat_template=template)
    return config, processor


IDEFICS_STYLE_FAMILIES = {
    "idefics2": idefics2,
    "idefics3": idefics3,
    "smolvlm": smolvlm,
    "lfm2_vl": lfm2_vl,
    "janus": janus,
}
