"""LoRA linear layers computed as one matmul: y = x (W + s B A)^T, with a hand-written backward.

peft computes a LoRA layer as `base(x) + s * B(A(x))`: besides the base matmul, two thin matmuls
(rank r) and two elementwise passes over the output forward, and four thin matmuls plus the same
passes backward. On a CPU the thin ones run far below the BLAS's speed for their FLOPs (a
[tokens, 256] x [256, 8] product takes a fifth of the time of the [tokens, 256] x [256, 256] one),
so on a small model they cost a quarter of the step. Folding the adapter into the weight (W + s B A
costs out x in x r multiply-adds, nothing next to tokens x out x in) leaves one matmul forward and
one for the input gradient; the adapter's own gradients are computed with the rank on the short
side of each product, the fast layout:

    grad_x = g (W + s B A)            grad_B = s g^T (x A^T) = s ((A x^T) g)^T
    grad_A = s (g B)^T x = s (B^T g^T) x

Exact up to float rounding (the same sums in another order). The two big products use the CPU kernel
of the base layer they fold (oneDNN where `model.cpu_matmul` routed it). Only plain LoRA on an unsharded,
unquantized `nn.Linear` is fused, and only for calls with many tokens (generation's one-token steps
would pay r times their own cost to fold the weight); everything else runs peft's own forward.

Under autocast the layer is not folded: W + s B A rounded to bf16 would lose the adapter's small update.
It is computed as peft does, `base(x) + s * B(A(x))`, when the scale is not a power of two. When it is (alpha
twice the rank, LLaMA-Factory's default) the scale multiplies B's weights instead of B's output (exact in every
float format), and the matmul adds its product into the base layer's output in place (`baddbmm_`): one pass
over the layer's output where a product, a scaling and a sum made three, forward and backward (a SmolLM2 gate
projection on 2,048 tokens, AMX, tcmalloc: 5.2 vs 6.0 ms), and the sum rounded to bf16 once where peft rounds the
product and the sum: gradients as close to the float32 ones as peft's under autocast (tests/model/test_fused_lora.py).
Where the base layer's frozen weight is stored in bf16 (model/frozen_linears.py: most checkpoints) or recast for
each pass (model/recast_weights.py: long micro-batches), the base and the adapter products run in one function
(`_AdapterProduct`), whose backward also adds the input gradient through A into the one through W by the matmul:
the layer's input then has one gradient instead of two, each cast to float32 and summed by the shared cast's
backward (model/shared_casts.py).

Where the base layer keeps its frozen weight's bf16 copy from step to step (short micro-batches,
model/recast_weights.py), `lora_A` sits in r more rows below that copy and comes out of the base product:
[y_base | h] = x [W; A]^T, then y = y_base + h (s B)^T. On a CPU the thin products cost far more than
their FLOPs (a call's fixed cost), and this takes two of a layer's six away: A's forward product and the
input-gradient product through A, which joins the base one, (g | g_h) [W; A]: the quickstart's training
runs ~3% faster. Not bit for bit: oneDNN may pick another kernel for the wider matrix, summing the same
products in another order, and the input gradient is rounded to bf16 once instead of twice; the loss and
gradients stay within autocast's own rounding of peft's (tests/model/test_fused_lora.py). Layers with a
bias keep the path above.
"""

import logging
import math
import types
from typing import Any

import torch
from peft.tuners.lora import Linear as LoraLinear
from torch.nn import functional

from lmforge.model import cpu_matmul
from lmforge.model.frozen_linears import stores_half_weight
from lmforge.model.recast_weights import keeps_weight_copy, kept_copy_rows, recasts_weight
from lmforge.model.shared_casts import half_precision_input

logger = logging.getLogger(__name__)

# A call is fused when it has at least this many tokens per unit of rank: folding costs r
# multiply-adds per weight, the matmul `tokens` per weight.
MIN_TOKENS_PER_RANK = 16


class _FoldedLoraMatmul(torch.autograd.Function):
    """y = x (W + s B A)^T + bias, for a frozen W and bias."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                lora_a: torch.Tensor, lora_b: torch.Tensor, scaling: float, onednn: bool) -> torch.Tensor:
        ctx.save_for_backward(x, weight, lora_a, lora_b)
        ctx.scaling, ctx.onednn = scaling, onednn
        return cpu_matmul.linear(x, torch.addmm(weight, lora_b, lora_a, alpha=scaling), bias, onednn=onednn)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight, lora_a, lora_b = ctx.saved_tensors
        scaling = ctx.scaling
        x2 = x.reshape(-1, x.shape[-1])
        g2 = grad_out.reshape(-1, grad_out.shape[-1])
        grad_x = None
        if ctx.needs_input_grad[0]:
            folded = torch.addmm(weight, lora_b, lora_a, alpha=scaling)
            grad_x = cpu_matmul.linear(g2, folded.t(), onednn=ctx.onednn).view_as(x)
        grad_a = grad_b = None
        if ctx.needs_input_grad[3]:
            grad_a = (lora_b.t() @ g2.t()) @ x2 * scaling
        if ctx.needs_input_grad[4]:
            grad_b = ((lora_a @ x2.t()) @ g2).t() * scaling
        return grad_x, None, None, grad_a, grad_b, None, None


def _fused_forward(self: LoraLinear, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """peft's `lora.Linear.forward`, with eligible calls folded into one matmul (on the base layer's kernel)."""
    adapter = self.active_adapters[0] if len(self.active_adapters) == 1 else None
    base = self.base_layer
    if (args or kwargs or adapter is None or self.disable_adapters or self.merged
            or adapter not in self.lora_A or adapter in self.lora_variant):
        return type(self).forward(self, x, *args, **kwargs)
    if torch.is_autocast_enabled(x.device.type):
        scaling = self.scaling[adapter]
        if scaling <= 0 or math.frexp(scaling)[0] != 0.5:  # not a power of two
            return type(self).forward(self, x, *args, **kwargs)
        if (keeps_weight_copy(base) and base.bias is None and base.weight.dtype == torch.float32
                and not base.weight.requires_grad):  # where the base's own forward keeps the copy
            return _stacked_call(self, adapter, x, scaling)
        frozen = stores_half_weight(base) or (recasts_weight(base) and base.weight.dtype == torch.float32
                                               and not base.weight.requires_grad)
        if frozen and base.bias is None and x.dim() >= 2:
            half = half_precision_input(base, x)
            if half.dtype in (torch.bfloat16, torch.float16):
                with torch.autocast(x.device.type, enabled=False):
                    return _AdapterProduct.apply(half, self.lora_A[adapter].weight, self.lora_B[adapter].weight,
                                                 base.weight, scaling)
        return _added_adapter_product(base(x), self.lora_A[adapter](x), self.lora_B[adapter].weight * scaling)
    lora_a, lora_b = self.lora_A[adapter].weight, self.lora_B[adapter].weight
    tokens = x.numel() // max(x.shape[-1], 1)
    if (tokens < MIN_TOKENS_PER_RANK * lora_a.shape[0] or base.weight.requires_grad
            or (base.bias is not None and base.bias.requires_grad)
            or not x.dtype == base.weight.dtype == lora_a.dtype == lora_b.dtype):
        return type(self).forward(self, x, *args, **kwargs)
    return _FoldedLoraMatmul.apply(x, base.weight, base.bias, lora_a, lora_b, self.scaling[adapter],
                                   cpu_matmul.is_routed(base))


def _added_adapter_product(base_out: torch.Tensor, adapter_input: torch.Tensor, b_scaled: torch.Tensor) -> torch.Tensor:
    """base_out + adapter_input (s B)^T, the product added into `base_out` in place by the matmul (one pass over
    the layer's output where a product and a sum make three) where the layout allows."""
    half = b_scaled.to(base_out.dtype)  # what autocast makes of it
    if base_out.dtype != adapter_input.dtype or base_out.dim() not in (2, 3) or base_out._base is not None:
        return base_out + functional.linear(adapter_input, half)
    if base_out.dim() == 2:
        return base_out.addmm_(adapter_input, half.t())
    return base_out.baddbmm_(adapter_input, half.t().expand(base_out.shape[0], -1, -1))


def _adapter_grads(ctx: Any, grad: torch.Tensor, rows: torch.Tensor, adapter_input: torch.Tensor,
                   b_scaled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """For y = ... + (x A^T)(s B)^T with inputs (x, A, B, ...): the gradient of x A^T, and A's and B's (float32)."""
    grad_b = (grad.t() @ adapter_input).float() * ctx.scaling if ctx.needs_input_grad[2] else None
    grad_adapter_input = grad @ b_scaled
    grad_a = (grad_adapter_input.t() @ rows).float() if ctx.needs_input_grad[1] else None
    return grad_adapter_input, grad_a, grad_b


class _AdapterProduct(torch.autograd.Function):
    """y = x W^T + (x A^T)(s B)^T in half precision for a frozen W, the adapter's product added into the base one by
    the matmul; backward, the input gradient through A added into the one through W the same way, so the layer's
    input has one gradient (one cast and sum in the shared cast's backward instead of two). A float32 W is cast for
    the forward and again for the backward, as `recast_weights` does, rather than kept."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, weight: torch.Tensor,
                scaling: float) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        a_half, b_scaled = lora_a.to(x.dtype), (lora_b * scaling).to(x.dtype)  # what autocast makes of them
        adapter_input = rows @ a_half.t()
        y = (rows @ weight.to(x.dtype).t()).addmm_(adapter_input, b_scaled.t())
        ctx.save_for_backward(rows, adapter_input, a_half, b_scaled)
        ctx.weight, ctx.scaling, ctx.input_shape = weight, scaling, x.shape  # the weight is frozen
        return y.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        rows, adapter_input, a_half, b_scaled = ctx.saved_tensors
        grad = grad_out.reshape(-1, grad_out.shape[-1])
        grad_adapter_input, grad_a, grad_b = _adapter_grads(ctx, grad, rows, adapter_input, b_scaled)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad @ ctx.weight.to(grad.dtype)).addmm_(grad_adapter_input, a_half).view(ctx.input_shape)
        return grad_x, grad_a, grad_b, None, None


class _StackedAdapterProduct(torch.autograd.Function):
    """y = x W^T + (x A^T)(s B)^T in half precision, with x A^T out of the product with `stacked` = [W; A]."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor, stacked: torch.Tensor,
                scaling: float) -> torch.Tensor:
        rows = x.reshape(-1, x.shape[-1])
        out_features = stacked.shape[0] - lora_a.shape[0]
        both = functional.linear(rows, stacked)
        adapter_input = both[:, out_features:].contiguous()
        b_scaled = (lora_b * scaling).to(x.dtype)  # what autocast makes of peft's B with the scale folded in
        y = both[:, :out_features] + functional.linear(adapter_input, b_scaled)
        ctx.save_for_backward(rows, adapter_input, b_scaled)
        # not saved for backward: its A rows are rewritten in place by the next forward, with the same values
        # until the optimizer steps (after this backward pass)
        ctx.stacked, ctx.scaling, ctx.input_shape = stacked, scaling, x.shape
        return y.view(*x.shape[:-1], out_features)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        rows, adapter_input, b_scaled = ctx.saved_tensors
        grad = grad_out.reshape(-1, grad_out.shape[-1])
        grad_adapter_input, grad_a, grad_b = _adapter_grads(ctx, grad, rows, adapter_input, b_scaled)
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = (torch.cat([grad, grad_adapter_input], dim=1) @ ctx.stacked).view(ctx.input_shape)
        return grad_x, grad_a, grad_b, None, None


def _stacked_call(self: LoraLinear, adapter: str, x: torch.Tensor, scaling: float) -> torch.Tensor:
    base, lora_a = self.base_layer, self.lora_A[adapter].weight
    half = half_precision_input(base, x)
    stacked = kept_copy_rows(base, lora_a.shape[0], half.dtype)
    with torch.no_grad():  # every call: fused AdamW updates A in place without moving its version counter
        stacked[base.weight.shape[0]:].copy_(lora_a)
    with torch.autocast(x.device.type, enabled=False):
        return _StackedAdapterProduct.apply(half, lora_a, self.lora_B[adapter].weight, stacked, scaling)


def _foldable(module: torch.nn.Module) -> bool:
    """Plain LoRA (no dropout, no DoRA, no LoRA bias) on a plain `nn.Linear`."""
    return (isinstance(module, LoraLinear) and type(module.base_layer) is torch.nn.Linear
            and not module.fan_in_fan_out and not module.lora_variant
            and all(isinstance(dropout, torch.nn.Identity) for dropout in module.lora_dropout.values())
            and all(layer.bias is None for layer in module.lora_B.values()))


def fold_lora_layers(model: torch.nn.Module) -> int:
    """Route every eligible LoRA linear layer of `model` through the folded matmul; returns how many.
    Only these instances' forward differs: peft's class, the parameters, the saved adapter and merging
    (which puts the base layer back) are unchanged, and so is every other model."""
    count = 0
    for module in model.modules():
        if _foldable(module):
            module.forward = types.MethodType(_fused_forward, module)
            count += 1
    logger.info("LoRA: %d linear layers folded into one matmul each (fused_lora)", count)
    return count
