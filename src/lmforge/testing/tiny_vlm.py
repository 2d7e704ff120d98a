"""Tiny random vision/audio-language models with their family's REAL processor, built locally.

Each family is a builder returning `(model config, processor)`: tiny text and vision (or audio)
sub-configs, the family's own image/video/audio processor class with small sizes, and the
bundled tiny BPE tokenizer with the family's special tokens added under the names the processor
looks for (`image_token`, `boi_token`, ...). `build_tiny_vlm` saves both to a folder, so tests load
them back through `AutoProcessor` / `AutoModelForImageTextToText.from_pretrained` like a real
checkpoint. Everything is deterministic (fixed seed, fixed corpus).
"""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from lmforge.testing.tiny_vlm_audio import AUDIO_LM_FAMILIES
from lmforge.testing.tiny_vlm_extra import EXTRA_FAMILIES
from lmforge.testing.tiny_vlm_gemma import GEMMA_FAMILIES
from lmforge.testing.tiny_vlm_latest import LATEST_AUDIO_FAMILIES, LATEST_FAMILIES
from lmforge.testing.tiny_vlm_llava import LLAVA_STYLE_FAMILIES
from lmforge.testing.tiny_vlm_more import IDEFICS_STYLE_FAMILIES
from lmforge.testing.tiny_vlm_omni import OMNI_FAMILIES
from lmforge.testing.tiny_vlm_parts import chat_template, tiny_text, tiny_vit, tiny_vlm_tokenizer
from lmforge.testing.tiny_vlm_qwen import QWEN_STYLE_FAMILIES
from lmforge.testing.tiny_vlm_recent import RECENT_AUDIO_FAMILIES, RECENT_FAMILIES


def _qwen2_vl(version: str = "qwen2_vl") -> tuple[Any, Any]:
    from transformers import Qwen2VLImageProcessor, Qwen2VLProcessor, Qwen2VLVideoProcessor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                                    "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"})
    # 28..56 pixels a side: 1 to 4 merged tokens per image
    sizes = {"min_pixels": 28 * 28, "max_pixels": 56 * 56}
    ids = {"image_token_id": tokenizer.image_token_id, "video_token_id": tokenizer.video_token_id,
           "vision_start_token_id": tokenizer.vision_start_token_id,
           "vision_end_token_id": tokenizer.vision_end_token_id}
    text = tiny_text(tokenizer, rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                             "mrope_section": [2, 3, 3]})
    if version == "qwen2_vl":
        from transformers import Qwen2VLConfig

        vision = {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
        config = Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
        processor_class = Qwen2VLProcessor
    else:
        from transformers import Qwen2_5_VLConfig, Qwen2_5_VLProcessor

        vision = {"depth": 1, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2, "out_hidden_size": 64,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 56,
                  "fullatt_block_indexes": [0]}
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
        processor_class = Qwen2_5_VLProcessor
    processor = processor_class(image_processor=Qwen2VLImageProcessor(**sizes), tokenizer=tokenizer,
                                video_processor=Qwen2VLVideoProcessor(**sizes),
                                chat_template=chat_template(image="<|vision_start|><|image_pad|><|vision_end|>",
                                                            video="<|vision_start|><|video_pad|><|vision_end|>"))
    return config, processor


def _llava() -> tuple[Any, Any]:
    from transformers import CLIPImageProcessor, LlavaConfig, LlavaProcessor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"})
    vision = {"model_type": "clip_vision_model", "image_size": 28, "projection_dim": 32, **tiny_vit()}
    config = LlavaConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=vision,
                         image_token_index=tokenizer.image_token_id, vision_feature_layer=-1,
                         vision_feature_select_strategy="default", image_seq_length=4)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=chat_template(image="<image>\n"))
    return config, processor


def _gemma3() -> tuple[Any, Any]:
    from transformers import Gemma3Config, Gemma3ImageProcessor, Gemma3Processor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
                                    "eoi_token": "<end_of_image>"})
    vision = {"model_type": "siglip_vision_model", "image_size": 56, **tiny_vit()}
    text = tiny_text(tokenizer, sliding_window=64, query_pre_attn_scalar=16)
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4,
                          image_token_index=tokenizer.image_token_id, boi_token_index=tokenizer.boi_token_id,
                          eoi_token_index=tokenizer.eoi_token_id)
    image_processor = Gemma3ImageProcessor(size={"height": 56, "width": 56})
    processor = Gemma3Processor(image_processor=image_processor, tokenizer=tokenizer, image_seq_length=4,
                                chat_template=chat_template(image="<start_of_image>"))
    return config, processor


def _llava_next() -> tuple[Any, Any]:
    from transformers import LlavaNextConfig, LlavaNextImageProcessor, LlavaNextProcessor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"})
    pinpoints = [[28, 28], [28, 56], [56, 28], [56, 56]]
    vision = {"model_type": "clip_vision_model", "image_size": 28, "projection_dim": 32, **tiny_vit()}
    config = LlavaNextConfig(text_config={"model_type": "llama", **tiny_text(tokenizer)}, vision_config=vision,
                             image_token_index=tokenizer.image_token_id, image_grid_pinpoints=pinpoints,
                             vision_feature_layer=-1, vision_feature_select_strategy="default", image_seq_length=4)
    image_processor = LlavaNextImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28},
                                              image_grid_pinpoints=pinpoints)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                   vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                   chat_template=chat_template(image="<image>"))
    return config, processor


def _pixtral() -> tuple[Any, Any]:
    from transformers import LlavaConfig, PixtralImageProcessor, PixtralProcessor

    tokenizer = tiny_vlm_tokenizer({"image_token": "[IMG]"}, extra=("[IMG_BREAK]", "[IMG_END]"))
    vision = {"model_type": "pixtral", "image_size": 56, "head_dim": 16, **tiny_vit()}
    config = LlavaConfig(text_config={"model_type": "mistral", **tiny_text(tokenizer)}, vision_config=vision,
                         image_token_index=tokenizer.image_token_id, vision_feature_layer=-1,
                         vision_feature_select_strategy="full", multimodal_projector_bias=False)
    image_processor = PixtralImageProcessor(size={"longest_edge": 56}, patch_size=14)
    processor = PixtralProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                 spatial_merge_size=1, chat_template=chat_template(image="[IMG]"))
    return config, processor


def _paligemma() -> tuple[Any, Any]:
    from transformers import PaliGemmaConfig, PaliGemmaProcessor, SiglipImageProcessor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"})
    vision = {"model_type": "siglip_vision_model", "image_size": 28, "projection_dim": 64, **tiny_vit()}
    text = {"model_type": "gemma", **tiny_text(tokenizer)}
    config = PaliGemmaConfig(text_config=text, vision_config=vision, image_token_index=tokenizer.image_token_id,
                             projection_dim=64, hidden_size=64)
    image_processor = SiglipImageProcessor(size={"height": 28, "width": 28})
    image_processor.image_seq_length = 4
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                   chat_template=chat_template(image="<image>"))
    return config, processor


def _intern_vl() -> tuple[Any, Any]:
    from transformers import GotOcr2ImageProcessor, InternVLConfig, InternVLProcessor, InternVLVideoProcessor

    tokenizer = tiny_vlm_tokenizer({"start_image_token": "<img>", "end_image_token": "</img>",
                                    "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"})
    vision = {"image_size": 28, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 1, "num_attention_heads": 2}
    config = InternVLConfig(text_config={"model_type": "qwen2", **tiny_text(tokenizer)}, vision_config=vision,
                            image_token_id=tokenizer.context_image_token_id, downsample_ratio=0.5,
                            vision_feature_layer=-1)
    sizes = {"size": {"height": 28, "width": 28}}
    processor = InternVLProcessor(image_processor=GotOcr2ImageProcessor(crop_to_patches=False, **sizes),
                                  tokenizer=tokenizer, video_processor=InternVLVideoProcessor(**sizes),
                                  image_seq_length=1,
                                  chat_template=chat_template(image="<IMG_CONTEXT>\n", video="<video>\n"))
    return config, processor


def _llama4() -> tuple[Any, Any]:
    from transformers import Llama4Config, Llama4ImageProcessor, Llama4Processor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image|>"}, extra=(
        "<|image_start|>", "<|image_end|>", "<|patch|>", "<|tile_x_separator|>", "<|tile_y_separator|>"))
    # 28-pixel tiles of 2x2 patches, pixel-shuffled (ratio 0.5) into one token per tile
    vision = {"image_size": 28, "patch_size": 14, "hidden_size": 32, "intermediate_size": 128,
              "num_hidden_layers": 1, "num_attention_heads": 2, "vision_output_dim": 64,
              "projector_input_dim": 64, "projector_output_dim": 64, "pixel_shuffle_ratio": 0.5}
    text = tiny_text(tokenizer, intermediate_size_mlp=128, num_local_experts=2, interleave_moe_layer_step=2,
                 attention_chunk_size=64)
    # the model's image features replace the `<|patch|>` tokens; `<|image|>` is the text placeholder
    config = Llama4Config(text_config=text, vision_config=vision,
                          image_token_index=tokenizer.convert_tokens_to_ids("<|patch|>"),
                          boi_token_index=tokenizer.convert_tokens_to_ids("<|image_start|>"),
                          eoi_token_index=tokenizer.convert_tokens_to_ids("<|image_end|>"))
    image_processor = Llama4ImageProcessor(size={"height": 28, "width": 28}, max_patches=4)
    processor = Llama4Processor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                pixel_shuffle_ratio=0.5, chat_template=chat_template(image="<|image|>"))
    return config, processor


def _mllama() -> tuple[Any, Any]:
    from transformers import MllamaConfig, MllamaImageProcessor, MllamaProcessor

    tokenizer = tiny_vlm_tokenizer({"image_token": "<|image|>"}, extra=("<|python_tag|>",))
    vision = {"image_size": 28, "patch_size": 14, "hidden_size": 32, "intermediate_size": 64,
              "num_hidden_layers": 2, "num_global_layers": 1, "attention_heads": 2, "max_num_tiles": 4,
              "vision_output_dim": 64, "intermediate_layers_indices": [0]}
    text = tiny_text(tokenizer, cross_attention_layers=[1])
    text.pop("head_dim")
    config = MllamaConfig(text_config=text, vision_config=vision, image_token_index=tokenizer.image_token_id)
    image_processor = MllamaImageProcessor(size={"height": 28, "width": 28}, max_image_tiles=4)
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer,
                                chat_template=chat_template(image="<|image|>"))
    return config, processor


def _qwen2_audio() -> tuple[Any, Any]:
    from transformers import Qwen2AudioConfig, Qwen2AudioProcessor, WhisperFeatureExtractor

    tokenizer = tiny_vlm_tokenizer({"audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>",
                                    "audio_eos_token": "<|audio_eos|>"})
    # Whisper layout, shrunk: 8 mel bins, 4-second windows -> 400 frames -> 100 audio tokens at most
    audio = {"num_mel_bins": 8, "d_model": 32, "encoder_layers": 1, "encoder_attention_heads": 2,
             "encoder_ffn_dim": 64, "max_source_positions": 200}
    config = Qwen2AudioConfig(text_config={"model_type": "qwen2", **tiny_text(tokenizer)}, audio_config=audio,
                              audio_token_index=tokenizer.audio_token_id)
    features = WhisperFeatureExtractor(feature_size=8, sampling_rate=16000, chunk_length=4)
    processor = Qwen2AudioProcessor(feature_extractor=features, tokenizer=tokenizer,
                                    chat_template=chat_template(audio="<|audio_bos|><|AUDIO|><|audio_eos|>"))
    return config, processor


TINY_VLM_FAMILIES: dict[str, Callable[[], tuple[Any, Any]]] = {
    "qwen2_vl": _qwen2_vl,
    "qwen2_5_vl": lambda: _qwen2_vl("qwen2_5_vl"),
    "llava": _llava,
    "gemma3": _gemma3,
    "llava_next": _llava_next,
    "pixtral": _pixtral,
    "paligemma": _paligemma,
    "intern_vl": _intern_vl,
    "llama4": _llama4,
    "mllama": _mllama,
    "qwen2_audio": _qwen2_audio,
    **QWEN_STYLE_FAMILIES,
    **LLAVA_STYLE_FAMILIES,
    **IDEFICS_STYLE_FAMILIES,
    **EXTRA_FAMILIES,
    **GEMMA_FAMILIES,
    **OMNI_FAMILIES,
    **AUDIO_LM_FAMILIES,
    **RECENT_FAMILIES,
    **RECENT_AUDIO_FAMILIES,
    **LATEST_FAMILIES,
    **LATEST_AUDIO_FAMILIES,
}
AUDIO_FAMILIES = frozenset({"qwen2_audio", *AUDIO_LM_FAMILIES, *RECENT_AUDIO_FAMILIES, *LATEST_AUDIO_FAMILIES})


def model_auto_class(family: str) -> Any:
    """The transformers Auto class that loads `family`: image-text-to-text, or multimodal LM for audio."""
    import transformers

    name = "AutoModelForMultimodalLM" if family in AUDIO_FAMILIES else "AutoModelForImageTextToText"
    return getattr(transformers, name)


def build_tiny_vlm(out_dir: str | Path, family: str) -> Path:
    """Write a tiny random model of `family` and its processor (tokenizer included) to `out_dir`."""
    import torch

    out_dir = Path(out_dir)
    config, processor = TINY_VLM_FAMILIES[family]()
    torch.manual_seed(0)
    model = model_auto_class(family).from_config(config, dtype=torch.float32)
    model.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir
