"""Tiny configs of decoders whose layers carry a state along the sequence (hidden 64, 2 layers: one of each
kind), which bin-packing must refuse (`lmforge.data.packable_decoder`): LFM2 (a short convolution and an
attention layer), Qwen3-Next (a gated-delta-net linear-attention layer and an attention layer) and
Granite-4 hybrid (a Mamba-2 layer and an attention layer). Their PyTorch paths run on the CPU.
"""

from typing import Any


def _shape(tokenizer: Any) -> dict[str, Any]:
    return dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                # weights ten times the default's scale: what a state carries across examples then moves the
                # logits by units, far above float error (at 0.02, LFM2's convolution moves them by 3e-4)
                initializer_range=0.2)


def _lfm2(tokenizer: Any) -> Any:
    from transformers import Lfm2Config

    return Lfm2Config(**_shape(tokenizer), layer_types=["conv", "full_attention"])


def _qwen3_next(tokenizer: Any) -> Any:
    from transformers import Qwen3NextConfig

    return Qwen3NextConfig(**_shape(tokenizer), head_dim=16, layer_types=["linear_attention", "full_attention"],
                           linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=16,
                           linear_value_head_dim=16, num_experts=4, num_experts_per_tok=2,
                           moe_intermediate_size=32, shared_expert_intermediate_size=32)


def _granite_hybrid(tokenizer: Any) -> Any:
    from transformers import GraniteMoeHybridConfig

    return GraniteMoeHybridConfig(**_shape(tokenizer), layer_types=["mamba", "attention"], mamba_n_heads=4,
                                  mamba_d_head=32, mamba_d_state=16, mamba_n_groups=1, mamba_chunk_size=16,
                                  num_local_experts=0, shared_intermediate_size=128)


def _causal(build: Any) -> Any:
    return lambda tokenizer: (build(tokenizer), "AutoModelForCausalLM")


STATEFUL_FAMILIES = {"lfm2": _causal(_lfm2), "qwen3_next": _causal(_qwen3_next),
                     "granitemoehybrid": _causal(_granite_hybrid)}
