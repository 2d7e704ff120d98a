"""Training FLOPs per token and model FLOPs utilisation (MFU) of a decoder-only transformer.

The convention (PaLM's, Chowdhery et al. 2022, appendix B; nanoGPT's `estimate_mfu`):

- N is the number of weights a token is multiplied by: every linear layer of every decoder block
  (attention q, k, v, o; MLP gate, up, down) and the output head (vocab x hidden, counted even when it
  is tied to the input embedding: the lookup multiplies nothing, the head does). Biases, norms, rotary
  embeddings, softmax and the loss are left out (well under 1% of the work).
- A weight costs 2 FLOPs per token forward, 2 backward for its input's gradient and 2 for its own
  gradient. Full fine-tuning: 6N. LoRA: the frozen base skips its weight gradients, 4N, and the
  adapter's weights are trained, 6 x its parameters: 4N + 6 N_adapter. Freeze tuning: 4N + 2 x the base
  weights it trains. (Frozen layers below every trainable one need no backward at all; LoRA has adapters in
  the first layer, so none are; freeze tuning's frozen lower layers are counted as if they had one, so its
  figure is an upper bound.)
- Attention adds, per layer and per key a query attends to, 2 FLOPs x (heads x head_dim) for the scores
  QK^T and as many for the weighted sum AV, three times over for forward and backward:
  12 x layers x heads x head_dim x context per token. `context` counts every key of the sequence,
  without halving for the causal mask (PaLM's choice, so figures compare across papers). A packed row
  attends within each of its sequences: its context is the token-weighted mean length
  sum(len^2) / sum(len) (`packed_context`), not the row's length.
- Recomputation by gradient checkpointing is not counted: these are model FLOPs, the useful work, so
  MFU does not rise when a run recomputes more.
- Tokens are the non-padding tokens trained on, prompt tokens included; each costs the whole count, output
  head included, even where the chunked loss skips the head at unsupervised positions.
- MFU = tokens per second x FLOPs per token / the device's peak matmul rate in the dtype the run computes
  in (`train/peak.py`: a GPU's datasheet dense bf16 rate, `peak_bf16_flops`, else a measured one).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmforge.errors import ModelError

# Datasheet dense bf16 tensor-core rates (no sparsity), FLOP/s, by a substring of torch's device name;
# the first match wins, so the specific names come before the plain ones.
PEAK_BF16_DENSE: tuple[tuple[str, float], ...] = (
    ("H200 NVL", 835e12),
    ("H200", 989e12),  # SXM
    ("H100 NVL", 835e12),
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM ("NVIDIA H100 80GB HBM3")
    ("A100", 312e12),
)


@dataclass(frozen=True)
class DecoderShape:
    """The sizes that set a decoder-only transformer's FLOPs (gated MLP: gate, up and down projections)."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int

    @classmethod
    def from_config(cls, config: Any) -> "DecoderShape":
        """From a transformers config of a Llama-style decoder (Llama, Qwen2/2.5/3, Mistral, ...)."""
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        needed = ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "vocab_size")
        missing = [name for name in needed if getattr(text, name, None) is None]
        if missing or getattr(text, "num_local_experts", None) or getattr(text, "num_experts", None):
            lacks = f"no {', '.join(missing)}" if missing else "experts"
            raise ModelError(f"FLOPs are counted for dense Llama-style decoders; model_type "
                             f"`{getattr(text, 'model_type', '?')}` has {lacks} (count its matmul weights and call "
                             "`training_flops_per_token` directly)")
        if getattr(text, "is_heterogeneous", False):  # transformers refuses to read one size for all layers
            raise ModelError(f"FLOPs are counted for decoders whose layers share one shape; model_type "
                             f"`{getattr(text, 'model_type', '?')}` sizes its layers one by one (count its matmul "
                             "weights and call `training_flops_per_token` directly)")
        heads = text.num_attention_heads
        intermediate = text.intermediate_size
        if isinstance(intermediate, list):  # one size per layer (Gemma 3n): their mean gives the same total
            intermediate = round(sum(intermediate) / len(intermediate))
        return cls(layers=text.num_hidden_layers, hidden=text.hidden_size, heads=heads,
                   kv_heads=getattr(text, "num_key_value_heads", None) or heads,
                   head_dim=getattr(text, "head_dim", None) or text.hidden_size // heads,
                   intermediate=intermediate, vocab=text.vocab_size)

    @property
    def attention_width(self) -> int:
        """heads x head_dim: the width of the queries (and of the attention's output)."""
        return self.heads * self.head_dim

    @property
    def matmul_params(self) -> int:
        """N: the weights of every matrix multiply (decoder blocks and output head)."""
        kv_width = self.kv_heads * self.head_dim
        attention = 2 * self.hidden * self.attention_width + 2 * self.hidden * kv_width  # q, o; k, v
        mlp = 3 * self.hidden * self.intermediate
        return self.layers * (attention + mlp) + self.vocab * self.hidden


def packed_context(lengths: Sequence[int]) -> float:
    """The mean number of keys a token attends to when each sequence attends only within itself."""
    total = sum(lengths)
    if total <= 0:
        raise ValueError("packed_context needs at least one token")
    return sum(length * length for length in lengths) / total


def attention_flops_per_token(shape: DecoderShape, context: float) -> float:
    """12 x layers x heads x head_dim x context: scores and weighted sum, forward and backward."""
    return 12.0 * shape.layers * shape.attention_width * context


def training_flops_per_token(shape: DecoderShape, context: float, *, adapter_params: int | None = None,
                             trained_base_params: int = 0) -> float:
    """Model FLOPs of one trained token, plus the attention term: 6N (full fine-tuning, `adapter_params=None`),
    4N + 6 x adapter_params (LoRA: frozen base plus adapter) or, freeze tuning (`adapter_params=0`),
    4N + 2 x trained_base_params (the weight gradients of the base weights it trains)."""
    if adapter_params is None:
        weights = 6.0 * shape.matmul_params
    else:
        weights = 4.0 * shape.matmul_params + 6.0 * adapter_params + 2.0 * trained_base_params
    return weights + attention_flops_per_token(shape, context)


def peak_bf16_flops(device_name: str) -> float | None:
    """The datasheet dense bf16 rate of a GPU by torch's name for it; None when not listed."""
    return next((peak for key, peak in PEAK_BF16_DENSE if key in device_name), None)


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: the share of the peak rate that went into the model's FLOPs."""
    return tokens_per_s * flops_per_token / peak_flops
