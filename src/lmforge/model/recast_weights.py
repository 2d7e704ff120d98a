"""Half-precision weight copies: remade in the backward pass (long micro-batches), or kept (short ones).

Under autocast every linear layer multiplies a bf16/fp16 copy of its float32 weight, and the matmul
keeps that copy for the backward pass (the input's gradient needs it). By the end of the forward pass a
copy of every projection weight is alive at once: SmolLM2-135M's 106M projection weights hold 212 MB in
bf16, on top of the float32 weights they were made from, whether the weights train or not.

`recast_weights_in_backward` gives each float32 `nn.Linear` of one model its own forward: under autocast
with gradients on it makes the weight's copy itself and, through `saved_recipes.remade_in_backward` around
that one call, lets the matmul keep a reference to the float32 weight (alive anyway) in place of
the copy; the backward pass casts it again when it needs it. The cast is deterministic, so the numbers are
the same; a step pays one more cast of the weights (about 1% of an SFT step on SmolLM2 at 4 x 512 tokens, 7%
of the quickstart's short rows: `train/precision.recast_weights` says when it pays). Outside autocast,
without gradients and for weights already in half precision it is the plain linear layer.

Not for layers under activation checkpointing: those keep no weight copy anyway, and the hooks, being the
innermost, would keep the tensors of that call (the input) that checkpointing's own hooks would have
dropped (a checkpointed DPO step on SmolLM2 grew by ~1 GB).

Short micro-batches go the other way (`keep_frozen_weight_copies`): their steps keep every copy until the
backward pass anyway, so a frozen float32 weight's copy is made once and kept from step to step instead of
cast again on every forward (the quickstart's 106M frozen projection weights, whose values bf16 does not hold
exactly: ~0.05 s of a ~1 s step on the Intel Xeon with AMX). The copy is the cast autocast would make,
remade if the weight changes; the step's peak memory is the same (the copies were kept for its backward
pass), only the time between steps holds them too. Not under activation checkpointing, which keeps no copy.
"""

import types

import torch
from torch.nn import functional

from lmforge.model.saved_recipes import remade_in_backward


def _forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    weight = self.weight
    device = x.device.type
    if weight.dtype != torch.float32 or not torch.is_grad_enabled() or not torch.is_autocast_enabled(device):
        return functional.linear(x, weight, self.bias)
    dtype = torch.get_autocast_dtype(device)
    copy = weight.to(dtype)  # what autocast would make; its gradient is a cast back
    source = weight.detach()
    with remade_in_backward(copy, lambda: source.to(dtype)):
        return functional.linear(x, copy, self.bias)


def _kept_copy_forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    weight = self.weight
    device = x.device.type
    if weight.dtype != torch.float32 or weight.requires_grad or not torch.is_autocast_enabled(device):
        return functional.linear(x, weight, self.bias)
    copy = kept_copy_rows(self, 0, torch.get_autocast_dtype(device))
    return functional.linear(x, copy, self.bias)  # autocast casts x (and the bias) as it would have


def recasts_weight(layer: torch.nn.Module) -> bool:
    """Whether `recast_weights_in_backward` gave `layer` its forward."""
    return getattr(layer.__dict__.get("forward"), "__func__", None) is _forward


def keeps_weight_copy(layer: torch.nn.Module) -> bool:
    """Whether `keep_frozen_weight_copies` gave `layer` its forward."""
    return getattr(layer.__dict__.get("forward"), "__func__", None) is _kept_copy_forward


def kept_copy_rows(layer: torch.nn.Linear, extra_rows: int, dtype: torch.dtype) -> torch.Tensor:
    """The kept `dtype` copy of `layer`'s frozen weight [out, in] with `extra_rows` rows of the caller's below it,
    as one [out + extra_rows, in] tensor (the copy is its first `out` rows: made once, the layer's forward reads
    them, the caller writes the rest). A LoRA layer's `lora_A` there comes out of the base product
    (model/fused_lora.py)."""
    weight = layer.weight
    made_from = (weight.data_ptr(), weight._version, dtype)
    kept = layer.__dict__.get("_lmforge_kept_copy")
    if (kept is None or kept[0] != made_from
            or (extra_rows and kept[2].shape[0] != weight.shape[0] + extra_rows)):  # another adapter's rank
        rows = torch.empty(weight.shape[0] + extra_rows, weight.shape[1], dtype=dtype, device=weight.device)
        rows[:weight.shape[0]].copy_(weight.detach())  # the cast autocast would make
        kept = (made_from, rows[:weight.shape[0]], rows)
        layer.__dict__["_lmforge_kept_copy"] = kept
    return kept[2] if extra_rows else kept[1]


def _plain_float32_linears(model: torch.nn.Module) -> list[torch.nn.Linear]:
    """The float32 `nn.Linear` layers of `model` on the CPU without a forward of their own."""
    return [module for module in model.modules()
            if type(module) is torch.nn.Linear and "forward" not in module.__dict__
            and module.weight.dtype == torch.float32 and module.weight.device.type == "cpu"]


def keep_frozen_weight_copies(model: torch.nn.Module) -> int:
    """Give every frozen float32 `nn.Linear` of `model` on the CPU without a forward of its own the kept copy
    of its weight under autocast (above); returns how many layers."""
    frozen = [module for module in _plain_float32_linears(model) if not module.weight.requires_grad]
    for module in frozen:
        module.forward = types.MethodType(_kept_copy_forward, module)
    return len(frozen)


def recast_weights_in_backward(model: torch.nn.Module) -> int:
    """Give every float32 `nn.Linear` of `model` on the CPU without a forward of its own (the oneDNN route,
    bf16-stored frozen weights, fused LoRA keep theirs) the forward above; returns how many layers."""
    layers = _plain_float32_linears(model)
    for module in layers:
        module.forward = types.MethodType(_forward, module)
    return len(layers)
