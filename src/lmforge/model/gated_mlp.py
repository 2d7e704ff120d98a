"""The gated MLP's activation recomputed in the backward pass instead of kept from the forward pass.

A Llama-style MLP computes `down(act(gate(x)) * up(x))`. Autograd keeps three tensors of the
intermediate width per token for its backward pass: `gate(x)` (for the activation's derivative),
`act(gate(x))` and `up(x)` (for the product's). The activation is elementwise and cheap to compute again
from `gate(x)`; keeping it costs as much memory as either of the others (SmolLM2-135M at 4 x 512 tokens,
bf16: 189 MB over its 30 layers).

`recompute_gated_activations` gives each such MLP of one model its own forward that computes the product
through `_GatedProduct`, which keeps only `gate(x)` and `up(x)` and, in the backward pass, runs the
activation again under the forward's autocast state and differentiates it with autograd: the same
operations and kernels as before, so the same numbers. With `remake_products` the product itself, which
`down` keeps for its weight's (or its adapter's) gradient, is not kept either: the backward pass makes it
again from `gate(x)` and `up(x)` (saved_recipes.py; SmolLM2-135M at 4 x 512 tokens: 180 MiB in bf16). Where the
activation is SiLU, the backward pass calls SiLU's derivative kernel itself (the one autograd would call, on the same
tensors) and multiplies by the activation that the product's remaking, just before it in the same backward pass, made
(else it makes it): SiLU runs twice a step per layer instead of three times. Only
MLPs whose forward is exactly that expression (their code is compared with ours) and whose activation has no
parameters are changed.
"""

import functools
import types
from typing import Any

import torch
from transformers import activations

from lmforge.model.saved_recipes import remade_in_backward, same_code

_SILU_FORWARD = activations.SiLUActivation.forward


def _is_silu(act: torch.nn.Module) -> bool:
    """Whether `act` is SiLU as torch's or transformers' module computes it (no forward of its own)."""
    return "forward" not in act.__dict__ and (type(act) is torch.nn.SiLU or (
        type(act) is activations.SiLUActivation and same_code(type(act).forward, _SILU_FORWARD)))


class _GatedProduct(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, gate: torch.Tensor, up: torch.Tensor, act: torch.nn.Module,
                remade: list[torch.Tensor]) -> torch.Tensor:
        device = gate.device.type
        ctx.act, ctx.device, ctx.remade = act, device, remade
        ctx.autocast = (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device))
        ctx.save_for_backward(gate, up)
        return act(gate) * up

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None, None]:
        gate, up = ctx.saved_tensors
        enabled, dtype = ctx.autocast
        grad_gate = grad_up = None
        if _is_silu(ctx.act):
            # SiLU's derivative by the kernel autograd would call, on the same tensors; the activation the product's
            # remaking in this backward pass made just before (`_product`), or made again
            activated = ctx.remade.pop() if ctx.remade else _activated(gate, ctx.act, ctx.device, ctx.autocast)
            if ctx.needs_input_grad[1]:
                grad_up = grad * activated
            if ctx.needs_input_grad[0]:
                grad_gate = torch.ops.aten.silu_backward(grad * up, gate)
            return grad_gate, grad_up, None, None
        with torch.enable_grad(), torch.autocast(ctx.device, dtype=dtype, enabled=enabled):
            leaf = gate.detach().requires_grad_(True)
            activated = ctx.act(leaf)
        grad_up = grad * activated.detach() if ctx.needs_input_grad[1] else None
        if ctx.needs_input_grad[0]:
            (grad_gate,) = torch.autograd.grad(activated, leaf, grad * up)
        return grad_gate, grad_up, None, None


def _activated(gate: torch.Tensor, act: torch.nn.Module, device: str,
               autocast: tuple[bool, torch.dtype]) -> torch.Tensor:
    with torch.autocast(device, dtype=autocast[1], enabled=autocast[0]):
        return act(gate)


def _reference_forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    # transformers' spelling of the gated MLP (Llama, Qwen2/3, Mistral, Gemma, OLMo2, Granite, SmolLM3, ...)
    down_proj = self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))
    return down_proj


def _forward(self: Any, x: torch.Tensor) -> torch.Tensor:
    gate, up = self.gate_proj(x), self.up_proj(x)
    if torch.is_grad_enabled() and (gate.requires_grad or up.requires_grad):
        return self.down_proj(_GatedProduct.apply(gate, up, self.act_fn, []))
    return self.down_proj(self.act_fn(gate) * up)


def _product(gate: torch.Tensor, up: torch.Tensor, act: torch.nn.Module, device: str,
             autocast: tuple[bool, torch.dtype], remade: list[torch.Tensor]) -> torch.Tensor:
    activated = _activated(gate, act, device, autocast)
    if _is_silu(act):  # for `_GatedProduct`'s backward, which runs next (down's backward asked for the product)
        remade[:] = [activated]
    return activated * up


def _forward_remaking_product(self: Any, x: torch.Tensor) -> torch.Tensor:
    gate, up = self.gate_proj(x), self.up_proj(x)
    if not (torch.is_grad_enabled() and (gate.requires_grad or up.requires_grad)):
        return self.down_proj(self.act_fn(gate) * up)
    remade: list[torch.Tensor] = []
    product = _GatedProduct.apply(gate, up, self.act_fn, remade)
    device = gate.device.type
    recipe = functools.partial(_product, gate.detach(), up.detach(), self.act_fn, device,
                               (torch.is_autocast_enabled(device), torch.get_autocast_dtype(device)), remade)
    with remade_in_backward(product, recipe):
        return self.down_proj(product)


def recompute_gated_activations(model: torch.nn.Module, remake_products: bool = False) -> int:
    """Give every gated MLP of `model` written as transformers' `down(act(gate(x)) * up(x))`, with a
    parameter-free activation and no forward of its own, the forward above (`remake_products`: the one that also
    remakes the product in the backward pass; not under activation checkpointing); returns how many."""
    changed = 0
    for module in model.modules():
        act = getattr(module, "act_fn", None)
        if ("forward" in module.__dict__ or not isinstance(act, torch.nn.Module) or any(act.parameters())
                or not same_code(type(module).forward, _reference_forward)):
            continue
        forward = _forward_remaking_product if remake_products else _forward
        module.forward = types.MethodType(forward, module)
        changed += 1
    return changed
