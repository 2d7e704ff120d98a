"""LongLoRA's shift short attention (S²-Attn, LLaMA-Factory's `shift_attn`), for one model instance.

While the model trains, each row is cut into 4 groups of equal size and every token attends only within
its own group; half of the heads see groups moved by half a group, so neighbouring groups exchange
information: the first `heads // 2` heads group tokens [0, g), [g, 2g), ..., the others [g/2, 3g/2), ...,
and their last group wraps around: [L - g/2, L) with [0, g/2). In eval mode (evaluation, generation) it is
plain SDPA, so the trained model runs with full attention.

Within a group the model's own mask still holds: causal over the tokens' real positions, padding, packed
sequences. So no token ever attends to a later token or to padding, also in the wrapping group, where
LLaMA-Factory's patch (local causal order after the roll) lets the first g/2 tokens of the shifted heads see
the row's last g/2 tokens, and where it uses the first group's padding mask for every group. A row
whose length is not a multiple of 4 (LLaMA-Factory stops there) is padded inside attention to the next
multiple: the added positions come after every real token, so no real token attends to them.

`shift_short_attention` is registered with transformers' `AttentionInterface` under its own name, `S2_SDPA`
(with SDPA's mask function under the same name), and `use_shift_short_attention` selects it on one model with
`set_attn_implementation`; "sdpa" stays transformers' own for every other model of the process.
"""

from typing import Any

import torch
from torch.nn import functional
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from lmforge.errors import ModelError

# Contains "sdpa" so that transformers checks the model can run SDPA before selecting it.
S2_SDPA = "lmforge_s2_sdpa"
GROUPS = 4  # LongLoRA's group_size_ratio of 1/4


def _shifted_groups(states: torch.Tensor, group: int, shift: int) -> torch.Tensor:
    """[B, H, P, D] -> [B*G, H, g, D]: the row rolled left by `shift`, cut into groups of `group` tokens."""
    batch, heads, length, dim = states.shape
    rolled = states.roll(-shift, dims=2) if shift else states
    return rolled.reshape(batch, heads, length // group, group, dim).transpose(1, 2).reshape(-1, heads, group, dim)


def _ungroup(out: torch.Tensor, batch: int, group: int, shift: int) -> torch.Tensor:
    """The inverse of `_shifted_groups`."""
    _, heads, _, dim = out.shape
    states = out.reshape(batch, -1, heads, group, dim).transpose(1, 2).reshape(batch, heads, -1, dim)
    return states.roll(shift, dims=2) if shift else states


def _group_masks(allowed: torch.Tensor, batch: int, group: int, shift: int) -> torch.Tensor:
    """[B|1, 1, P, P] bool -> [B*G, 1, g, g]: each group's block of the mask, rolled as the tokens are."""
    rolled = allowed.roll((-shift, -shift), dims=(2, 3)) if shift else allowed
    rows, _, length, _ = rolled.shape
    count = length // group
    blocks = rolled.reshape(rows, count, group, count, group).diagonal(dim1=1, dim2=3)  # [B|1, g, g, G]
    return blocks.permute(0, 3, 1, 2).expand(batch, count, group, group).reshape(-1, 1, group, group)


def _sdpa(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, mask: torch.Tensor | None, dropout: float,
          scaling: float | None) -> torch.Tensor:
    return functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout,
                                                   is_causal=mask is None, scale=scaling,
                                                   enable_gqa=key.shape[1] != query.shape[1])


def _one_head_set(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, allowed: torch.Tensor | None,
                  group: int, shift: int, dropout: float, scaling: float | None) -> torch.Tensor:
    """Attention within the groups of one set of heads, [B, h, P, D]."""
    batch, _, length, _ = query.shape
    if allowed is not None or not shift:
        grouped = (_shifted_groups(states, group, shift) for states in (query, key, value))
        masks = None if allowed is None else _group_masks(allowed, batch, group, shift)
        return _ungroup(_sdpa(*grouped, masks, dropout, scaling), batch, group, shift)  # no mask: causal kernels
    # Without a mask every group but the wrapping one is plain causal and a slice of the row, so only that
    # group is copied: its first tokens are the row's last ones, which its others (the row's first) must not see.
    # One `split` per tensor, not slices: each slice's backward would zero-fill a whole row's gradient.
    end = length - group + shift
    head, body, tail = zip(*(states.split([shift, end - shift, group - shift], dim=2)
                             for states in (query, key, value)), strict=True)
    body_out = _ungroup(_sdpa(*(_shifted_groups(part, group, 0) for part in body), None, dropout, scaling),
                        batch, group, 0)
    wrapping = (torch.cat([last, first], dim=2) for last, first in zip(tail, head, strict=True))
    positions = (torch.arange(group, device=query.device) + end) % length
    wrapping_out = _sdpa(*wrapping, (positions[None, :] <= positions[:, None])[None, None], dropout, scaling)
    return torch.cat([wrapping_out[:, :, group - shift:], body_out, wrapping_out[:, :, :group - shift]], dim=2)


def _padded_mask(attention_mask: torch.Tensor, length: int, padded: int) -> torch.Tensor:
    """The model's [B, 1, L, >=L] mask as booleans over the padded row; every query may see itself, so that a
    padding query whose group holds nothing it may see gets no NaN (its output is never used)."""
    mask = attention_mask[:, :, :, :length]
    if mask.dtype != torch.bool:  # an additive float mask: 0 where attention is allowed
        mask = mask == 0
    mask = functional.pad(mask, (0, padded - length, 0, padded - length), value=False)
    return mask | torch.eye(padded, dtype=torch.bool, device=mask.device)


def s2_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask: torch.Tensor | None,
                 dropout: float = 0.0, scaling: float | None = None) -> torch.Tensor:
    """Shift short attention of [B, H, L, D] query and [B, KV, L, D] key/value (KV divides H); output [B, L, H, D],
    the layout attention functions return."""
    heads, length = query.shape[1:3]
    padded = -(-length // GROUPS) * GROUPS
    group = padded // GROUPS
    if padded != length:
        query, key, value = (functional.pad(states, (0, 0, 0, padded - length)) for states in (query, key, value))
    allowed = None if attention_mask is None else _padded_mask(attention_mask, length, padded)
    half = heads // 2  # the heads that keep the plain grouping; LongLoRA shifts the others
    repeats = heads // key.shape[1]
    if half % repeats:  # a key/value head serves heads of both sets: give each query head its own copy
        key, value, repeats = repeat_kv(key, repeats), repeat_kv(value, repeats), 1
    kv_half = half // repeats
    (plain_q, shifted_q), (plain_k, shifted_k), (plain_v, shifted_v) = (
        states.split([cut, states.shape[1] - cut], dim=1) for states, cut in
        ((query, half), (key, kv_half), (value, kv_half)))
    parts = [_one_head_set(plain_q, plain_k, plain_v, allowed, group, 0, dropout, scaling)] if half else []
    parts.append(_one_head_set(shifted_q, shifted_k, shifted_v, allowed, group, group // 2, dropout, scaling))
    out = torch.cat(parts, dim=1)
    return (out if padded == length else out[:, :, :length]).transpose(1, 2).contiguous()


def shift_short_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                          attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                          **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention function: S²-Attn while `module` trains, else transformers' SDPA unchanged
    (evaluation, generation with a cache, a non-causal attention)."""
    causal = kwargs.get("is_causal")
    causal = getattr(module, "is_causal", True) if causal is None else causal
    if (not module.training or not causal or query.shape[2] != key.shape[2]
            or kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    return s2_attention(query, key, value, attention_mask, dropout, scaling), None


def register() -> None:
    """Add `S2_SDPA` to transformers' attention functions, with SDPA's masks. Idempotent; no name changes."""
    AttentionInterface.register(S2_SDPA, shift_short_attention)
    AttentionMaskInterface.register(S2_SDPA, sdpa_mask)


def _where_text(config: Any, text: Any, wanted: str) -> dict[str, Any]:
    """`set_attn_implementation`'s nested form: `wanted` for the text model's config, the others as they are
    (a vision tower keeps its own attention)."""
    found: dict[str, Any] = {"": wanted if config is text else config._attn_implementation}
    for key in config.sub_configs:
        if (sub := getattr(config, key, None)) is not None:
            found[key] = _where_text(sub, text, wanted)
    return found


def use_shift_short_attention(model: Any, enabled: bool = True) -> None:
    """Select S²-Attn on `model`'s text model (`enabled=False`: back to "sdpa"); nothing else in the process
    changes. Raises `ModelError` when the model did not take it."""
    register()
    text = model.config.get_text_config()
    current = text._attn_implementation
    if enabled and current not in ("sdpa", S2_SDPA):
        raise ModelError(f"`shift_attn` runs on SDPA, and this model's attention is `{current}`: set "
                         "`attn_implementation: sdpa` (or auto), or remove `shift_attn`")
    model.set_attn_implementation(_where_text(model.config, text, S2_SDPA if enabled else "sdpa"))
    if enabled and text._attn_implementation != S2_SDPA:
        raise ModelError(f"{type(model).__name__} did not take shift short attention (its attention does not go "
                         "through transformers' AttentionInterface): remove `shift_attn`")


def check_shift_attention_fits(skeleton: torch.nn.Module, where: str) -> None:
    """Before any weight loads: the text model is a causal decoder whose attention transformers can switch
    (SDPA through its `AttentionInterface`), which is what `use_shift_short_attention` needs."""
    config = skeleton.config
    if getattr(config, "is_encoder_decoder", False):
        raise ModelError(f"{where}: `shift_attn` (LongLoRA's S²-Attn) is for decoder-only causal models, and "
                         f"`{config.model_type}` is an encoder-decoder: remove `shift_attn`")
    text = config.get_text_config()
    owners = [module for module in skeleton.modules()
              if isinstance(module, PreTrainedModel) and module.config is text]
    if not owners or not all(owner._supports_sdpa and owner._can_set_attn_implementation() for owner in owners):
        name = type(owners[0] if owners else skeleton).__name__  # the outermost: modules() yields it first
        raise ModelError(f"{where}: `shift_attn` needs a model whose attention runs SDPA through transformers' "
                         f"AttentionInterface, and {name} does not: remove `shift_attn` (or use `rope_scaling` "
                         "with packing and gradient checkpointing for long contexts)")
