"""Tiny configs of the other GGUF-exportable families (Mistral, Gemma 2, Gemma 3 text; Qwen2 is in
`families.py`).

Sizes follow the tiny Llama; fields a GGUF file does not carry keep their class defaults, so a GGUF
round trip can reproduce the logits exactly up to the stored precision.
"""

from typing import Any


def _shape(tokenizer: Any) -> dict[str, Any]:
    return dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=176, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id)


def _mistral_config(tokenizer: Any) -> Any:
    from transformers import MistralConfig

    return MistralConfig(**_shape(tokenizer), head_dim=16, tie_word_embeddings=False)


def _gemma2_config(tokenizer: Any) -> Any:
    from transformers import Gemma2Config

    return Gemma2Config(**_shape(tokenizer), head_dim=16)


def _gemma3_config(tokenizer: Any) -> Any:
    from transformers import Gemma3TextConfig

    return Gemma3TextConfig(**_shape(tokenizer), head_dim=16)


def _causal(build: Any) -> Any:
    return lambda tokenizer: (build(tokenizer), "AutoModelForCausalLM")


EXPORT_FAMILIES = {"mistral": _causal(_mistral_config), "gemma2": _causal(_gemma2_config),
                   "gemma3": _causal(_gemma3_config)}
