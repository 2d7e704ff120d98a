"""Tiny random models of the vision and audio families newer transformers releases added, each with its real
processor: Command A Vision (Cohere2-Vision), LFM3-VL, Granite 4 Vision, VideoLLaMA3, HunyuanOCR (HunYuan-VL),
Ovis2, Ovis2.5, LLaVA-OneVision-1.5, MiniCPM-V 4.6 / 4.7, MiniCPM-OCR; Qwen3-ASR, GLM-ASR (audio). Kimi K2.5 is in
tiny_vlm_extra."""

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


def granite4_vision() -> tuple[Any, Any]:
    from transformers import Granite4VisionConfig, Granite4VisionProcessor, LlavaNextImageProcessor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"}, template=template)
    pinpoints = [[56, 56], [56, 112], [112, 56]]
    # 56-pixel tiles of 4x4 patches; each Window Q-Former turns a 2x2 window into one query ("1/2"): 2x2 tokens
    # per tile. The Q-Former has one head per 64 vision channels, so the tower is 64 wide
    vision = {"model_type": "clip_vision_model", "image_size": 56, "projection_dim": 32,
              **tiny_vit(hidden_size=64, num_hidden_layers=2)}
    text = tiny_text(tokenizer)
    text.pop("head_dim")
    # one Q-Former layer, no text embeddings to speak of (its queries never read text)
    qformer = {"num_hidden_layers": 1, "intermediate_size": 64, "cross_attention_frequency": 1,
               "max_position_embeddings": 64, "vocab_size": 2, "use_qformer_text_input": False}
    config = Granite4VisionConfig(text_config=text, vision_config=vision, image_token_index=tokenizer.image_token_id,
                                  image_grid_pinpoints=pinpoints, vision_feature_layer=-1, downsample_rate="1/2",
                                  deepstack_layer_map=[[1, 0], [2, 1]], spatial_vision_layer=-1,
                                  spatial_target_layers=[0, 0, 1, 1], image_seq_length=4,
                                  qformer_config=qformer)
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": 56}, crop_size={"height": 56, "width": 56},
                                              image_grid_pinpoints=pinpoints)
    processor = Granite4VisionProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                        vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                        downsample_rate="1/2", chat_template=template)
    return config, processor


def video_llama_3() -> tuple[Any, Any]:
    from transformers import (
        VideoLlama3Config,
        VideoLlama3ImageProcessor,
        VideoLlama3Processor,
        VideoLlama3VideoProcessor,
    )

    from lmforge.testing.tiny_vlm_qwen import QWEN_MEDIA, QWEN_TEMPLATE

    tokenizer = tiny_vlm_tokenizer(QWEN_MEDIA, template=QWEN_TEMPLATE)
    vision = {**tiny_vit(), "patch_size": 14}
    config = VideoLlama3Config(text_config={"model_type": "qwen2", **tiny_text(tokenizer)}, vision_config=vision,
                               image_token_id=tokenizer.image_token_id, video_token_id=tokenizer.video_token_id)
    # images unmerged (one token per 14-pixel patch), frames merged 2x2: 28..56 pixels a side
    image_processor = VideoLlama3ImageProcessor(size={"shortest_edge": 28 * 28, "longest_edge": 56 * 56})
    video_processor = VideoLlama3VideoProcessor(size={"shortest_edge": 28 * 28, "longest_edge": 56 * 56})
    processor = VideoLlama3Processor(image_processor=image_processor, video_processor=video_processor,
                                     tokenizer=tokenizer, chat_template=QWEN_TEMPLATE)
    return config, processor


def hunyuan_vl() -> tuple[Any, Any]:
    from transformers import HunYuanVLConfig, HunYuanVLImageProcessor, HunYuanVLProcessor

    template = chat_template(image="<|image_start|><|image_pad|><|image_end|>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image_pad|>", "image_start_token": "<|image_start|>",
                                    "image_end_token": "<|image_end|>"}, extra=("<|image_newline|>",),
                                   template=template)
    # 3-axis XD-RoPE over the text (sections sum to head_dim / 2)
    text = tiny_text(tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                 "mrope_section": [4, 2, 2]})
    vision = {**tiny_vit(patch_size=16), "out_hidden_size": 64, "text_hidden_size": 64, "max_image_size": 64}
    config = HunYuanVLConfig(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id,
                             im_start_id=tokenizer.image_start_token_id, im_end_id=tokenizer.image_end_token_id,
                             im_newline_id=tokenizer.convert_tokens_to_ids("<|image_newline|>"))
    # 32..64 pixels a side at 16-pixel patches merged 2x2: 1 to 4 tokens, a newline per row, start and end
    image_processor = HunYuanVLImageProcessor(size={"shortest_edge": 32 * 32, "longest_edge": 64 * 64})
    processor = HunYuanVLProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    return config, processor


OVIS_INDICATORS = ("<IMG_START>", "<IMG_GRID>", "<IMG_COL>", "<IMG_ROW>", "<IMG_END>")


def ovis2() -> tuple[Any, Any]:
    from transformers import Ovis2Config, Ovis2ImageProcessor, Ovis2Processor

    template = chat_template(image="<image>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"}, extra=("<IMG_ATOM>", *OVIS_INDICATORS),
                                   template=template)
    # each 28-pixel tile's 2x2 patches become 4 probabilistic visual words (a 32-word visual vocabulary, its last
    # 5 words the indicators: start, grid, column, row, end)
    vision = {**tiny_vit(), "image_size": 28, "vocab_size": 32, "hidden_stride": 1, "num_visual_indicator_tokens": 5}
    config = Ovis2Config(text_config={"model_type": "qwen2", **tiny_text(tokenizer)}, vision_config=vision,
                         image_token_id=tokenizer.convert_tokens_to_ids("<IMG_ATOM>"),
                         visual_indicator_token_ids=tokenizer.convert_tokens_to_ids(list(OVIS_INDICATORS)),
                         vocab_size=len(tokenizer), hidden_size=64)
    image_processor = Ovis2ImageProcessor(size={"height": 28, "width": 28}, crop_to_patches=True, max_patches=2)
    processor = Ovis2Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_length=4,
                               chat_template=template)
    return config, processor


def ovis2_5() -> tuple[Any, Any]:
    from transformers import Ovis2_5Config, Ovis2_5ImageProcessor, Ovis2_5Processor, Ovis2_5VideoProcessor

    from lmforge.testing.tiny_vlm_qwen import QWEN3_SIZES

    media = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "image_start_token": "<img>",
             "image_end_token": "</img>", "video_start_token": "<vid>", "video_end_token": "</vid>"}
    template = chat_template(image="<|image_pad|>", video="<|video_pad|>")
    tokenizer = tiny_vlm_tokenizer(media, template=template)
    # NaViT patches merged 2x2 into words of a 32-word visual vocabulary (its last 4 the indicators)
    vision = {**tiny_vit(patch_size=16), "image_size": 64, "vocab_size": 32, "num_visual_indicator_tokens": 4,
              "window_size": 32, "max_position_embeddings": 64}
    ids = {f"{name}_id": tokenizer.convert_tokens_to_ids(token) for name, token in media.items()}
    config = Ovis2_5Config(text_config={"model_type": "qwen3", **tiny_text(tokenizer)}, vision_config=vision, **ids)
    processor = Ovis2_5Processor(image_processor=Ovis2_5ImageProcessor(**QWEN3_SIZES), tokenizer=tokenizer,
                                 video_processor=Ovis2_5VideoProcessor(**QWEN3_SIZES), chat_template=template)
    return config, processor


def llava_onevision1_5() -> tuple[Any, Any]:
    from transformers import Exaone4_5_Processor, LlavaOnevision15Config, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    from lmforge.testing.tiny_vlm_qwen import QWEN_MEDIA, QWEN_TEMPLATE, _qwen_ids

    tokenizer = tiny_vlm_tokenizer(QWEN_MEDIA, template=QWEN_TEMPLATE)
    # a RICE-ViT tower, 14-pixel patches merged 2x2; transformers maps its checkpoints to the EXAONE 4.5
    # processor (Qwen2-VL's image expansion)
    vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
              "patch_size": 14, "spatial_merge_size": 2}
    config = LlavaOnevision15Config(text_config={"model_type": "qwen3", **tiny_text(tokenizer)}, vision_config=vision,
                                    **_qwen_ids(tokenizer))
    # 28..56 pixels a side, one frame per temporal patch (the tower's patches are 2-D)
    sizes = {"min_pixels": 28 * 28, "max_pixels": 56 * 56, "temporal_patch_size": 1}
    processor = Exaone4_5_Processor(image_processor=Qwen2VLImageProcessor(**sizes), tokenizer=tokenizer,
                                    video_processor=Qwen2VLVideoProcessor(**sizes), chat_template=QWEN_TEMPLATE)
    return config, processor


def minicpmv4_6(version: str = "4_6") -> tuple[Any, Any]:
    """MiniCPM-V 4.6 / 4.7, or MiniCPM-OCR (`version="Ocr"`: 4.6's model, its own image processors, which keep
    4x more tokens by default)."""
    import transformers

    media = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>", "image_start_token": "<image>",
             "image_end_token": "</image>", "slice_start_token": "<slice>", "slice_end_token": "</slice>",
             "image_id_start_token": "<image_id>", "image_id_end_token": "</image_id>"}
    template = chat_template(image="<|image_pad|>", video="<|video_pad|>")
    tokenizer = tiny_vlm_tokenizer(media, template=template)
    # Qwen3.5's decoder: one linear-attention (Gated DeltaNet) layer and one full-attention layer
    text = tiny_text(tokenizer, model_type="qwen3_5_text", layer_types=["linear_attention", "full_attention"],
                     linear_key_head_dim=16, linear_value_head_dim=16, linear_num_key_heads=2,
                     linear_num_value_heads=4,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 1.0})
    vision = {**tiny_vit(num_hidden_layers=2), "image_size": 56}
    ids = {"image_token_id": tokenizer.image_token_id, "video_token_id": tokenizer.video_token_id}
    if version == "4_7":  # Canvas M-RoPE places the markers around each image canvas
        ids.update({f"{name}_id": tokenizer.convert_tokens_to_ids(media[f"{name}_token"])
                    for name in ("image_start", "image_end", "slice_start", "slice_end")},
                   newline_id=tokenizer.encode("\n", add_special_tokens=False)[0])
    prefix = "MiniCPMOcr" if version == "Ocr" else f"MiniCPMV{version}"
    size = {} if version == "Ocr" else {"image_size": 56}  # MiniCPM-OCR's config reads the tower's image size
    config = getattr(transformers, f"{prefix}Config")(text_config=text, vision_config=vision, insert_layer_id=0,
                                                      **size, **ids)
    # 56-pixel views of 4x4 patches merged 16x (MiniCPM-OCR: 4x): one (four) token(s) per view, the overview and
    # at most 2 slices
    sizes = {"scale_resolution": 56, "max_slice_nums": 2, "patch_size": 14}
    media_prefix = "MiniCPMV4_6" if version == "4_7" else prefix  # 4.7 reuses 4.6's image processors
    processor = getattr(transformers, f"{prefix}Processor")(
        image_processor=getattr(transformers, f"{media_prefix}ImageProcessor")(**sizes), tokenizer=tokenizer,
        video_processor=getattr(transformers, f"{media_prefix}VideoProcessor")(**sizes), chat_template=template)
    return config, processor


RECENT_FAMILIES = {
    "cohere2_vision": cohere2_vision,
    "lfm3_vl": lfm3_vl,
    "granite4_vision": granite4_vision,
    "video_llama_3": video_llama_3,
    "hunyuan_vl": hunyuan_vl,
    "ovis2": ovis2,
    "ovis2_5": ovis2_5,
    "llava_onevision1_5": llava_onevision1_5,
    "minicpmv4_6": minicpmv4_6,
    "minicpmv4_7": lambda: minicpmv4_6("4_7"),
    "minicpm_ocr": lambda: minicpmv4_6("Ocr"),
}


def qwen3_asr() -> tuple[Any, Any]:
    from transformers import Qwen3ASRConfig, Qwen3ASRFeatureExtractor, Qwen3ASRProcessor

    template = chat_template(audio="<|audio_start|><|audio_pad|><|audio_end|>")
    tokenizer = tiny_vlm_tokenizer({"audio_token": "<|audio_pad|>", "audio_bos_token": "<|audio_start|>",
                                    "audio_eos_token": "<|audio_end|>"}, extra=("<timestamp>",), template=template)
    # Whisper-style encoder shrunk: 8 mel bins, one layer; windows of 100 frames pooled 8x by three convolutions
    audio = {"num_mel_bins": 8, "encoder_layers": 1, "encoder_attention_heads": 2, "encoder_ffn_dim": 64,
             "d_model": 32, "output_dim": 64, "downsample_hidden_size": 16}
    config = Qwen3ASRConfig(text_config={"model_type": "qwen3", **tiny_text(tokenizer)}, audio_config=audio,
                            audio_token_id=tokenizer.audio_token_id,
                            timestamp_token_id=tokenizer.convert_tokens_to_ids("<timestamp>"),
                            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    processor = Qwen3ASRProcessor(feature_extractor=Qwen3ASRFeatureExtractor(feature_size=8, chunk_length=4),
                                  tokenizer=tokenizer, chat_template=template)
    return config, processor


def glmasr() -> tuple[Any, Any]:
    from transformers import GlmAsrConfig, GlmAsrProcessor, WhisperFeatureExtractor

    template = chat_template(audio="<|begin_of_audio|><|pad|><|end_of_audio|>")
    tokenizer = tiny_vlm_tokenizer({"audio_token": "<|pad|>"}, extra=("<|begin_of_audio|>", "<|end_of_audio|>"),
                                   template=template)
    # Whisper layout shrunk (8 mel bins, 4-second windows); the projector reads 4 merged frames, so its input is
    # 4x the encoder width
    audio = {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_mel_bins": 8, "max_position_embeddings": 200}
    config = GlmAsrConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, audio_config=audio,
                          audio_token_id=tokenizer.audio_token_id)
    features = WhisperFeatureExtractor(feature_size=8, sampling_rate=16000, chunk_length=4)
    processor = GlmAsrProcessor(feature_extractor=features, tokenizer=tokenizer, chat_template=template)
    return config, processor


RECENT_AUDIO_FAMILIES = {
    "qwen3_asr": qwen3_asr,
    "glmasr": glmasr,
}
