"""Attention of packed rows computed within each packed sequence ("varlen" attention) with SDPA.

A packed row holds several examples whose position ids restart at 0. transformers turns that into
a block-diagonal mask, and masked SDPA then scores every query against every key of the row: on a
512-token row of three examples about four times the work of attending inside each example
(fwd+bwd on the benchmark's shapes: 102 ms masked, 25 ms per sequence). flash-attention's varlen
kernels avoid that waste on CUDA; this does the same everywhere SDPA runs, CPU included.

The trainer passes the sequence boundaries (`packed_sequence_kwargs`) under transformers' own
names for them (`cu_seq_lens_q`, ... as flash-attention uses), and the model forwards them to its
attention function. `install()` registers `packed_sdpa_attention` as the "sdpa" implementation:
without those keys, or for non-causal or cached attention, it is transformers' SDPA unchanged.
"""

import itertools
from typing import Any

import torch
from torch.nn import functional
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward

BOUNDARY_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")


def packed_sequence_kwargs(position_ids: torch.Tensor) -> dict[str, Any]:
    """Cumulative sequence starts over the flattened batch: a sequence starts where positions restart
    (and at every row). Padding at the end of a row must continue its own positions (the collator does)."""
    flat = position_ids.reshape(-1)
    starts = torch.ones_like(flat, dtype=torch.bool)
    starts[1:] = flat[1:] != flat[:-1] + 1
    starts[:: position_ids.shape[-1]] = True
    end = torch.tensor([flat.numel()], device=flat.device)  # the trainer calls this on the model's device
    cu = torch.cat([starts.nonzero().flatten(), end]).to(torch.int32)
    longest = int((cu[1:] - cu[:-1]).max())
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": longest, "max_length_k": longest}


def _per_sequence(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, bounds: list[int],
                  dropout: float, scaling: float | None) -> torch.Tensor:
    batch, heads, length, dim = query.shape

    def flat(states: torch.Tensor) -> torch.Tensor:  # [B, H, L, D] -> [1, H, B*L, D]
        return states.transpose(0, 1).reshape(1, states.shape[1], batch * length, dim)

    q, k, v = flat(query), flat(key), flat(value)
    gqa = key.shape[1] != heads
    outputs = [functional.scaled_dot_product_attention(
        q[:, :, start:end], k[:, :, start:end], v[:, :, start:end], is_causal=True, dropout_p=dropout,
        scale=scaling, enable_gqa=gqa) for start, end in itertools.pairwise(bounds)]
    # [1, H, B*L, D] -> [B, L, H, D], the layout attention functions return
    return torch.cat(outputs, dim=2).reshape(heads, batch, length, dim).permute(1, 2, 0, 3).contiguous()


def packed_sdpa_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    bounds = kwargs.get("cu_seq_lens_q")
    window = kwargs.get("sliding_window")
    usable = (bounds is not None and kwargs.get("is_causal", getattr(module, "is_causal", True))
              and query.shape[2] == key.shape[2] and kwargs.get("softcap") is None
              and (window is None or kwargs.get("max_length_q", 0) <= window))
    if not usable:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    return _per_sequence(query, key, value, bounds.tolist(), dropout, scaling), None


def install() -> None:
    """Make "sdpa" the packed-aware SDPA above (idempotent; unchanged behaviour without boundaries)."""
    AttentionInterface.register("sdpa", packed_sdpa_attention)
