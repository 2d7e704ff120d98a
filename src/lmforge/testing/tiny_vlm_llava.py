"""Tiny random models of the LLaVA-style families (a ViT, a projector, a decoder; the image features
replace a run of image tokens): LLaVA-OneVision, LLaVA-NeXT-Video, Video-LLaVA, Granite vision
(LLaVA-NeXT on Granite), Mistral 3, Aya Vision, LightOnOCR, each with its real processor."""

from typing import Any

from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vit, tiny_vlm_tokenizer

CLIP = {"model_type": "clip_vision_model", "image_size": 28, "projection_dim": 32, **tiny_vit()}
SIGLIP = {"model_type": "siglip_vision_model", "image_size": 28, **tiny_vit()}
PINPOINTS = [[28, 28], [28, 56], [56, 28], [56, 56]]
IMAGE_VIDEO = {"image_token": "<image>", "video_token": "<video>"}
IMAGE_VIDEO_TEMPLATE = chat_template(image="<image>", video="<video>")


def llava_onevision() -> tuple[Any, Any]:
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
    )

    tokenizer = tiny_vlm_tokenizer(IMAGE_VIDEO, template=IMAGE_VIDEO_TEMPLATE)
    config = LlavaOnevisionConfig(text_config={"model_type": "qwen2", **tiny_text(tokenizer)}, vision_config=SIGLIP,
                                  image_token_index=tokenizer.image_token_id,
                                  video_token_index=tokenizer.video_token_id, image_grid_pinpoints=PINPOINTS,
                                  vision_feature_layer=-1, vision_feature_select_strategy="full")
    sizes = {"size": {"height": 28, "width": 28}}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(image_grid_pinpoints=PINPOINTS, **sizes), tokenizer=tokenizer,
        video_processor=LlavaOnevisionVideoProcessor(**sizes), num_image_tokens=4,
        vision_feature_select_strategy="full", chat_template=IMAGE_VIDEO_TEMPLATE)
    return config, processor


def llava_next_video() -> tuple[Any, Any]:
    from transformers import (
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    tokenizer = tiny_vlm_tokenizer(IMAGE_VIDEO, template=IMAGE_VIDEO_TEMPLATE)
    config = LlavaNextVideoConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=CLIP,
                                  image_token_index=tokenizer.image_token_id,
                                  video_token_index=tokenizer.video_token_id, image_grid_pinpoints=PINPOINTS,
                                  vision_feature_layer=-1, vision_feature_select_strategy="default",
                                  spatial_pool_stride=2, image_seq_length=4, video_seq_length=1)
    sizes = {"size": {"shortest_edge": 28}, "crop_size": {"height": 28, "width": 28}}
    processor = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(**sizes), tokenizer=tokenizer,
        image_processor=LlavaNextImageProcessor(image_grid_pinpoints=PINPOINTS, **sizes), patch_size=14,
        vision_feature_select_strategy="default", num_additional_image_tokens=1, chat_template=IMAGE_VIDEO_TEMPLATE)
    return config, processor


def video_llava() -> tuple[Any, Any]:
    from transformers import VideoLlavaConfig, VideoLlavaImageProcessor, VideoLlavaProcessor, VideoLlavaVideoProcessor

    tokenizer = tiny_vlm_tokenizer(IMAGE_VIDEO, template=IMAGE_VIDEO_TEMPLATE)
    config = VideoLlavaConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=CLIP,
                              image_token_index=tokenizer.image_token_id, video_token_index=tokenizer.video_token_id,
                              vision_feature_layer=-1, vision_feature_select_strategy="default",
                              image_seq_length=5, video_seq_length=40)
    sizes = {"size": {"shortest_edge": 28}, "crop_size": {"height": 28, "width": 28}}
    processor = VideoLlavaProcessor(
        image_processor=VideoLlavaImageProcessor(**sizes), video_processor=VideoLlavaVideoProcessor(**sizes),
        tokenizer=tokenizer, patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=IMAGE_VIDEO_TEMPLATE)
    return config, processor


def granite_vision() -> tuple[Any, Any]:
    """Granite vision is LLaVA-NeXT with a Granite decoder and several vision feature layers."""
    from transformers import LlavaNextConfig, LlavaNextImageProcessor, LlavaNextProcessor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"}, template=template)
    config = LlavaNextConfig(text_config={"model_type": "granite", **tiny_text(tokenizer)},
                             vision_config={**SIGLIP, "num_hidden_layers": 2},
                             image_token_index=tokenizer.image_token_id, image_grid_pinpoints=PINPOINTS,
                             vision_feature_layer=[-2, -1], vision_feature_select_strategy="full",
                             image_seq_length=4)
    sizes = {"size": {"shortest_edge": 28}, "crop_size": {"height": 28, "width": 28}}
    processor = LlavaNextProcessor(
        image_processor=LlavaNextImageProcessor(image_grid_pinpoints=PINPOINTS, **sizes), tokenizer=tokenizer,
        patch_size=14, vision_feature_select_strategy="full", num_additional_image_tokens=0, chat_template=template)
    return config, processor


def mistral3() -> tuple[Any, Any]:
    from transformers import Mistral3Config, PixtralImageProcessor, PixtralProcessor

    template = chat_template(image="[IMG]")
    tokenizer = tiny_vlm_tokenizer({"image_token": "[IMG]"}, extra=("[IMG_BREAK]", "[IMG_END]"), template=template)
    vision = {"model_type": "pixtral", "image_size": 56, "head_dim": 16, **tiny_vit()}
    config = Mistral3Config(text_config={"model_type": "mistral", **tiny_text(tokenizer)}, vision_config=vision,
                            image_token_index=tokenizer.image_token_id, vision_feature_layer=-1,
                            spatial_merge_size=2, multimodal_projector_bias=False)
    processor = PixtralProcessor(image_processor=PixtralImageProcessor(size={"longest_edge": 56}, patch_size=14),
                                 tokenizer=tokenizer, patch_size=14, spatial_merge_size=2, chat_template=template)
    return config, processor


def aya_vision() -> tuple[Any, Any]:
    from transformers import AyaVisionConfig, AyaVisionProcessor, GotOcr2ImageProcessor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"}, template=template, extra=(
        "<|START_OF_IMG|>", "<|END_OF_IMG|>", "<|IMG_PATCH|>", "<|IMG_LINE_BREAK|>", "TILE_GLOBAL",
        *(f"TILE_{index}" for index in range(1, 3))))
    patch = tokenizer.convert_tokens_to_ids("<|IMG_PATCH|>")
    config = AyaVisionConfig(text_config={"model_type": "cohere2", **tiny_text(tokenizer), "sliding_window": 64},
                             vision_config=SIGLIP, image_token_index=patch, downsample_factor=2,
                             vision_feature_layer=-1, vision_feature_select_strategy="full")
    image_processor = GotOcr2ImageProcessor(size={"height": 28, "width": 28}, max_patches=2)
    # 28-pixel tiles of 14-pixel patches, downsampled 2x: one `<|IMG_PATCH|>` per tile
    processor = AyaVisionProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14, img_size=28,
                                   downsample_factor=2, chat_template=template)
    return config, processor


def lighton_ocr() -> tuple[Any, Any]:
    from transformers import LightOnOcrConfig, LightOnOcrProcessor, PixtralImageProcessor

    template = chat_template(image="<|image_pad|>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image_pad|>", "image_break_token": "<|vision_pad|>",
                                    "image_end_token": "<|vision_end|>"}, template=template)
    vision = {"model_type": "pixtral", "image_size": 56, "head_dim": 16, **tiny_vit()}
    config = LightOnOcrConfig(text_config={"model_type": "qwen3", **tiny_text(tokenizer)}, vision_config=vision,
                              image_token_id=tokenizer.image_token_id, spatial_merge_size=2)
    processor = LightOnOcrProcessor(image_processor=PixtralImageProcessor(size={"longest_edge": 56}, patch_size=14),
                                    tokenizer=tokenizer, patch_size=14, spatial_merge_size=2, chat_template=template)
    return config, processor


LLAVA_STYLE_FAMILIES = {
    "llava_onevision": llava_onevision,
    "llava_next_video": llava_next_video,
    "video_llava": video_llava,
    "granite_vision": granite_vision,
    "mistral3": mistral3,
    "aya_vision": aya_vision,
    "lighton_ocr": lighton_ocr,
}
