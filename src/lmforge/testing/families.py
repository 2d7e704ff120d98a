"""Tiny configs of several model families, sized for tests (hidden 64, 2 layers).

Each builder takes the tiny tokenizer and returns (config, the transformers auto class that loads it).
They cover the shapes lmforge must tell apart: decoder-only (Llama, Qwen2, Gemma-3 text), a
vision-language model (Gemma-3 with a SigLIP tower), ChatGLM-style module names (GPT-NeoX uses
`query_key_value`, `dense`, `dense_h_to_4h`, `dense_4h_to_h` as ChatGLM does) and an encoder-decoder (T5).
"""

from collections.abc import Callable
from typing import Any

from lmforge.testing.tiny_export_families import EXPORT_FAMILIES
from lmforge.testing.tiny_stateful import STATEFUL_FAMILIES

# Gemma-3's image tokens, added to the tiny tokenizer of the VLM only.
GEMMA3_IMAGE_TOKENS = ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]


def _ids(tokenizer: Any) -> dict[str, int]:
    return dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)


def llama(tokenizer: Any) -> tuple[Any, str]:
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                       tie_word_embeddings=False, **_ids(tokenizer)), "AutoModelForCausalLM"


def qwen2(tokenizer: Any) -> tuple[Any, str]:
    from transformers import Qwen2Config

    return Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                       tie_word_embeddings=True, **_ids(tokenizer)), "AutoModelForCausalLM"


def _gemma3_text_kwargs(tokenizer: Any) -> dict[str, Any]:
    return dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=64,
                max_position_embeddings=2048, **_ids(tokenizer))


def gemma3_text(tokenizer: Any) -> tuple[Any, str]:
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(**_gemma3_text_kwargs(tokenizer)), "AutoModelForCausalLM"


def gemma3_vlm(tokenizer: Any) -> tuple[Any, str]:
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig

    tokenizer.add_special_tokens({"additional_special_tokens": GEMMA3_IMAGE_TOKENS},
                                 replace_extra_special_tokens=False)
    boi, eoi, image = tokenizer.convert_tokens_to_ids(GEMMA3_IMAGE_TOKENS)
    vision = SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                                image_size=32, patch_size=8)
    config = Gemma3Config(text_config=Gemma3TextConfig(**_gemma3_text_kwargs(tokenizer)).to_dict(),
                          vision_config=vision.to_dict(), mm_tokens_per_image=4,
                          boi_token_index=boi, eoi_token_index=eoi, image_token_index=image,
                          **_ids(tokenizer))
    return config, "AutoModelForImageTextToText"


def chatglm_like(tokenizer: Any) -> tuple[Any, str]:
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=2048, tie_word_embeddings=False,
                         **_ids(tokenizer)), "AutoModelForCausalLM"


def t5(tokenizer: Any) -> tuple[Any, str]:
    from transformers import T5Config

    # T5 starts decoding from the pad token and ends at eos.
    return T5Config(vocab_size=len(tokenizer), d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2,
                    num_heads=4, feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                    pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                    decoder_start_token_id=tokenizer.pad_token_id), "AutoModelForSeq2SeqLM"


TINY_FAMILIES: dict[str, Callable[[Any], tuple[Any, str]]] = {
    **EXPORT_FAMILIES,
    **STATEFUL_FAMILIES,
    "llama": llama,
    "qwen2": qwen2,
    "gemma3_text": gemma3_text,
    "gemma3_vlm": gemma3_vlm,
    "chatglm_like": chatglm_like,
    "t5": t5,
}
