"""Pieces every tiny vision/audio-language model builder uses: the tokenizer with the family's special
tokens, a tiny decoder and a tiny ViT, and a chat template that writes the family's media markers."""

from typing import Any

from lmforge.testing.tiny import build_tiny_tokenizer


def chat_template(**media: str) -> str:
    """A ChatML template for a tiny processor; `media` (image=..., video=..., audio=...) is the text the
    family's real chat template writes for one item of each kind (the processor-native plugin reads it)."""
    parts = "".join(f"{{% elif part['type'] == '{kind}' %}}{text}" for kind, text in media.items())
    return ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
            "{% else %}{% for part in m['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}" + parts +
            "{% endif %}{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
            "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


# lmforge renders conversations with its own templates; the processors' is for their media markers.
CHAT_TEMPLATE = chat_template(image="<image>")


def tiny_vlm_tokenizer(named: dict[str, str], extra: tuple[str, ...] = (), template: str | None = None) -> Any:
    """The tiny tokenizer plus special tokens; `named` ones become attributes (`tokenizer.image_token`)."""
    from transformers import PreTrainedTokenizerFast

    base = build_tiny_tokenizer()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=base.backend_tokenizer, bos_token=base.bos_token, eos_token=base.eos_token,
        pad_token=base.pad_token, unk_token=base.unk_token, extra_special_tokens=named)
    tokenizer.add_tokens([*named.values(), *extra], special_tokens=True)
    tokenizer.chat_template = template or CHAT_TEMPLATE
    return tokenizer


def tiny_text(tokenizer: Any, **overrides: Any) -> dict[str, Any]:
    """A tiny decoder: 2 layers, hidden 64, vocab sized to the tokenizer."""
    return {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 4096,
            "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id, **overrides}


def tiny_vit(**overrides: Any) -> dict[str, Any]:
    """A tiny ViT (CLIP/SigLIP style): 1 layer, hidden 32, 14-pixel patches."""
    return {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
            "patch_size": 14, **overrides}
