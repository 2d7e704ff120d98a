"""Tiny random audio-language models with their real processor: Phi-4-multimodal (images and audio), Voxtral."""

import base64
import json
import tempfile
from pathlib import Path
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


# Tekken's special tokens as Voxtral numbers them: the first twenty in mistral-common's order, `[AUDIO]` at 24
VOXTRAL_SPECIALS = ("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
                    "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]",
                    "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]",
                    *(f"<SPECIAL_{i}>" for i in range(20, 24)), "[AUDIO]", "[BEGIN_AUDIO]", "[TRANSCRIBE]")
# the pre-tokenizer pattern of Mistral's Tekken files
TEKKEN_PATTERN = (r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"
                  r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?"
                  r"[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def write_tiny_tekken(path: str | Path) -> Path:
    """A tiny Tekken (v7) `tekken.json` with Voxtral's special tokens and audio settings: 100 special tokens,
    then the 256 byte tokens (no merges). mistral-common reads it as it reads Voxtral's own file."""
    vocab = [{"rank": i, "token_bytes": base64.b64encode(bytes([i])).decode(), "token_str": None} for i in range(256)]
    special = [{"rank": i, "token_str": token, "is_control": True} for i, token in enumerate(VOXTRAL_SPECIALS)]
    data = {"config": {"pattern": TEKKEN_PATTERN, "num_vocab_tokens": 256, "default_vocab_size": 356,
                       "default_num_special_tokens": 100, "version": "v7"},
            "vocab": vocab, "special_tokens": special, "version": 1, "type": "Tekken",
            # 16 kHz audio padded to 30-second chunks, 12.5 audio tokens a second, 128 mel bins: Voxtral's own
            "audio": {"sampling_rate": 16000, "frame_rate": 12.5, "chunk_length_s": 30.0,
                      "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400}}}
    path = Path(path)
    path.write_text(json.dumps(data))
    return path


def voxtral() -> tuple[Any, Any]:
    from transformers import VoxtralConfig, VoxtralProcessor, WhisperFeatureExtractor
    from transformers.integrations.mistral.tokenizer import convert_tekken_tokenizer

    # the tokenizer in transformers' format, converted from the Tekken file (its chat template is mistral-common's);
    # saved without `tekken.json`, as lmforge loads Mistral tokenizers (`mistral_format=False`)
    with tempfile.TemporaryDirectory() as folder:
        tokenizer = convert_tekken_tokenizer(str(write_tiny_tekken(Path(folder) / "tekken.json")))
    tokenizer.init_kwargs.pop("vocab_file", None)
    text = tiny_text(tokenizer)
    # Whisper's layout on 128 mel bins and 30-second windows (1500 positions); the projector stacks 4 frames
    # (intermediate = 4 x hidden), so each window is 375 audio tokens, as mistral-common counts them
    audio = {"hidden_size": 32, "intermediate_size": 128, "num_hidden_layers": 1, "num_attention_heads": 2,
             "num_mel_bins": 128}
    config = VoxtralConfig(text_config=text, audio_config=audio,
                           audio_token_id=tokenizer.convert_tokens_to_ids("[AUDIO]"))
    processor = VoxtralProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tokenizer)
    return config, processor


AUDIO_LM_FAMILIES = {
    "phi4_multimodal": phi4_multimodal,
    "voxtral": voxtral,
}
