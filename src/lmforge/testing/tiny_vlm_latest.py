"""Tiny random models of the vision and audio families transformers 5.25 added last, each with its real processor:
Molmo2 (images and videos), dots3-note (images, videos and audio), FastVLM (images, LLaVA's processor), Step-3.7-Flash
(images); MOSS-Transcribe-Diarize (audio)."""

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


def dots3_note() -> tuple[Any, Any]:
    from transformers import (
        Dots3NoteConfig,
        Dots3NoteFeatureExtractor,
        Dots3NoteProcessor,
        Qwen2VLImageProcessor,
        Qwen3VLVideoProcessor,
    )

    from lmforge.testing.tiny_vlm_qwen import QWEN3_SIZES

    media = {"image_token": "<|imgpad|>", "video_token": "<|video_pad|>", "audio_token": "<|audio_comp_pad|>"}
    template = chat_template(image="<|imgpad|>", video="<|video_pad|>", audio="<|audio_comp_pad|>")
    tokenizer = tiny_vlm_tokenizer(media, template=template)
    # the decoder: two multi-head latent attention layers with the sparse-attention indexer, a dense MLP then an
    # MoE one (4 routed experts, one shared)
    text = tiny_text(tokenizer, num_attention_heads=2, num_key_value_heads=2, head_dim=24, q_lora_rank=16,
                     kv_lora_rank=16, qk_nope_head_dim=16, qk_rope_head_dim=8, v_head_dim=16, index_topk=64,
                     index_head_dim=16, index_n_heads=2, n_routed_experts=4, num_experts_per_tok=2,
                     moe_intermediate_size=32, shared_experts_intermediate_size=32)
    # a one-layer dense tower (16-pixel patches merged 2x2) and a one-layer Whisper-style encoder on 8 mel bins
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
              "patch_size": 16, "mlp_layer_types": ["dense"], "adapter_in_dim": 32, "adapter_out_dim": 64}
    audio = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
             "feature_size": 8, "downsample_hidden_size": 16, "adapter_input_size": 32, "adapter_out_dim": 64,
             "max_position_embeddings": 400}
    ids = {f"{kind}_token_id": tokenizer.convert_tokens_to_ids(token)
           for kind, token in zip(("image", "video", "audio"), media.values(), strict=True)}
    config = Dots3NoteConfig(text_config=text, vision_config=vision, audio_config=audio, **ids)
    sizes = {**QWEN3_SIZES, "temporal_patch_size": 1}  # the tower embeds 2-D patches, one frame each
    processor = Dots3NoteProcessor(image_processor=Qwen2VLImageProcessor(**sizes), tokenizer=tokenizer,
                                   video_processor=Qwen3VLVideoProcessor(**sizes),
                                   feature_extractor=Dots3NoteFeatureExtractor(feature_size=8, chunk_length=4),
                                   chat_template=template)
    return config, processor


def fast_vlm() -> tuple[Any, Any]:
    from transformers import CLIPImageProcessor, FastVlmConfig, LlavaProcessor

    # transformers ships no FastVLM processor; LLaVA's expands `<image>` (as its tests prompt) to one per tower cell
    template = chat_template(image="<image>\n")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<image>"}, template=template)
    # timm's FastViT (MCi3) shrunk to two stages, 8x down in all: a 32-pixel image gives 4x4 tokens
    stages = {"inference_mode": True, "layers": (1, 1), "embed_dims": (8, 16), "mlp_ratios": (2, 2),
              "se_downsamples": (False, False), "downsamples": (False, True), "pos_embs": (None, None),
              "token_mixers": ("repmixer", "repmixer"), "lkc_use_act": True, "stem_use_scale_branch": False}
    vision = {"model_type": "timm_wrapper", "architecture": "fastvit_mci3", "do_pooling": True, "global_pool": "avg",
              "hidden_size": 32, "num_channels": 3, "model_args": stages}
    config = FastVlmConfig(text_config={"model_type": "qwen2", **tiny_text(tokenizer)}, vision_config=vision,
                           image_token_index=tokenizer.image_token_id, image_seq_length=16)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                               vision_feature_select_strategy="full", num_additional_image_tokens=0,
                               chat_template=template)
    return config, processor


def step3p7() -> tuple[Any, Any]:
    from transformers import Step3p7Config, Step3p7ImageProcessor, Step3p7Processor

    template = chat_template(image="<im_patch>")
    tokenizer = tiny_vlm_tokenizer({"image_token": "<im_patch>"}, extra=(
        "<im_start>", "<im_end>", "<patch_start>", "<patch_end>", "<patch_newline>"), template=template)
    # a dense layer then an MoE one (4 routed experts and the shared one); the tower's 14-pixel patches go through
    # two stride-2 convolutions: one token per 56 pixels, for the global view and each local window
    text = tiny_text(tokenizer, mlp_layer_types=["dense", "sparse"], moe_intermediate_size=32, n_routed_experts=4,
                     num_experts_per_tok=2, share_expert_dim=32, sliding_window=64)
    vision = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 56, "patch_size": 14,
              "mlp_ratio": 2.0, "max_position_embeddings": 16}
    config = Step3p7Config(text_config=text, vision_config=vision, image_token_id=tokenizer.image_token_id)
    image_processor = Step3p7ImageProcessor(size={"height": 56, "width": 56}, patch_size=56)
    processor = Step3p7Processor(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)
    return config, processor


def moss_transcribe_diarize() -> tuple[Any, Any]:
    from transformers import (
        MossTranscribeDiarizeConfig,
        MossTranscribeDiarizeFeatureExtractor,
        MossTranscribeDiarizeProcessor,
    )

    template = chat_template(audio="<|audio_start|><|audio_pad|><|audio_end|>")
    tokenizer = tiny_vlm_tokenizer({"audio_token": "<|audio_pad|>", "audio_bos_token": "<|audio_start|>",
                                    "audio_eos_token": "<|audio_end|>"}, template=template)
    # Whisper's encoder shrunk (8 mel bins, 4-second windows: 200 positions after its stride-2 convolution);
    # 4 frames merged per audio token, a number token (seconds) every 2 seconds of audio
    audio = {"num_mel_bins": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
             "hidden_size": 32, "max_source_positions": 200}
    config = MossTranscribeDiarizeConfig(text_config={"model_type": "qwen3", **tiny_text(tokenizer)},
                                         audio_config=audio, audio_token_id=tokenizer.audio_token_id,
                                         audio_chunk_size=4 * 16000)
    features = MossTranscribeDiarizeFeatureExtractor(feature_size=8, chunk_length=4)
    processor = MossTranscribeDiarizeProcessor(feature_extractor=features, tokenizer=tokenizer, chat_template=template)
    return config, processor


LATEST_FAMILIES = {
    "molmo2": molmo2,
    "dots3_note": dots3_note,
    "fast_vlm": fast_vlm,
    "step3p7": step3p7,
}
LATEST_AUDIO_FAMILIES = {
    "moss_transcribe_diarize": moss_transcribe_diarize,
}
