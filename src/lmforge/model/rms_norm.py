"""RMSNorm over a float32 input with its backward pass written out, keeping only the input and the scale.

transformers' RMSNorm (Llama, Qwen2/3, Mistral, SmolLM3, ...) returns `weight * (x * rsqrt(mean(x²) + eps))`
computed in float32 (the residual stream under autocast, or plain float32 training). Through autograd its
backward pass is a dozen elementwise passes over the hidden states, each a read and a write of a float32 tensor
of the hidden width per token (pow, mean, rsqrt, two products and their gradients, and their sum): on a SmolLM2
LoRA step of 4 x 512 tokens on a 2-core CPU ~4 ms a norm, 61 norms. `fuse_rms_norms` gives each such norm of one
model a forward that computes the same operations in the same order (the same output, bit for bit) inside one
autograd function whose backward is the closed form, four passes:

    g_n = g * weight;  grad_x = scale * g_n - x * scale³ * mean(g_n * x);
    grad_weight = sum over tokens of g * x * scale

with the same float32 arithmetic, summed in another order (the gradients agree to float32 rounding, and are as
close to exact: tests/model/test_rms_norm.py). It keeps `x` and the per-token scale only: the normalised input, a
float32 tensor of the hidden width per token and norm that autograd keeps where the weight trains (SmolLM2-135M at
4 x 512 tokens: 61 norms, 275 MiB), is remade in the backward pass. The norm's output is not kept, but the
half-precision copy of it that the next projections read and keep for their weights' gradients is (shared_casts.py,
2 bytes per value instead of 4): with `remake_outputs` the output's recipe is remembered, so that copy is remade too
(saved_recipes.py; another 135 MiB on SmolLM2 at 4 x 512 tokens, ~0.5 ms a remake).

transformers kernelizes a model (the `kernels` package, one of its dependencies) when it loads and again on
every switch between training and evaluation mode (`model.train()`, which the Trainer calls every step): each
layer class it marks for hub kernels, RMSNorm among them, gets its class forward back, or a hub kernel, in
place of any forward of its own. `without_hub_kernels` turns that off for one model (transformers' own
`use_kernels` switch); the CPU, where these forwards are used, has no hub kernels to lose.
"""

import functools
import types
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from lmforge.model.saved_recipes import remember_recipe, same_code


class _ScaledByWeight(torch.autograd.Function):
    """weight * (x * scale) for float32 x with scale = rsqrt(mean(x²) + eps) computed from it (without gradient:
    this function's backward differentiates through it)."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(hidden, weight, scale)
        return weight * (hidden * scale)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
        hidden, weight, scale = ctx.saved_tensors
        width = hidden.shape[-1]
        with torch.autocast(hidden.device.type, enabled=False):  # float32 throughout, as autograd's would be
            return _gradients(ctx, grad, hidden, weight, scale, width)


def _gradients(ctx: Any, grad: torch.Tensor, hidden: torch.Tensor, weight: torch.Tensor, scale: torch.Tensor,
               width: int) -> tuple[torch.Tensor | None, torch.Tensor | None, None]:
    grad_weight = None
    if ctx.needs_input_grad[1]:
        grad_weight = (grad * (hidden * scale)).reshape(-1, width).sum(0)
    grad_hidden = None
    if ctx.needs_input_grad[0]:
        weighted = grad * weight
        # d scale / d x = -scale³ x / width: the scale's share of the gradient, per token
        through_scale = torch.linalg.vecdot(weighted, hidden).unsqueeze(-1).mul_(scale.pow(3)).div_(width)
        grad_hidden = weighted.mul_(scale).addcmul_(hidden, through_scale, value=-1)
    return grad_hidden, grad_weight, None


def _output(weight: torch.Tensor, hidden: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return weight * (hidden * scale)


def _forward(self: Any, hidden_states: torch.Tensor, remake_output: bool = False) -> torch.Tensor:
    weight = self.weight
    if not (hidden_states.dtype == weight.dtype == torch.float32 and torch.is_grad_enabled()
            and (hidden_states.requires_grad or weight.requires_grad)):
        return type(self).forward(self, hidden_states)
    with torch.no_grad():  # transformers' operations, in its order: the same scale
        scale = torch.rsqrt(hidden_states.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
    output = _ScaledByWeight.apply(hidden_states, weight, scale)
    if remake_output and weight.requires_grad:
        # the output itself is not kept, but the half-precision copy the projections read from it is
        # (shared_casts.py): the same multiplications again make it
        remember_recipe(output, functools.partial(_output, weight.detach(), hidden_states.detach(), scale))
    return output


def _remaking_output_forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    return _forward(self, hidden_states, remake_output=True)


def without_hub_kernels(model: torch.nn.Module) -> int:
    """Switch off transformers' hub-kernel layers (`use_kernels`) in every part of `model` that has them on, so
    that a layer's own forward stays; returns how many parts were switched."""
    # PreTrainedModel's own switch (peft's wrappers would forward the attribute to the model they wrap)
    switched = [module for module in model.modules()
                if isinstance(module, PreTrainedModel) and getattr(module, "use_kernels", False) is True]
    for module in switched:
        module.use_kernels = False  # reverts the marked layers to their torch forwards, then leaves them alone
    return len(switched)


def fuse_rms_norms(model: torch.nn.Module, remake_outputs: bool = False) -> int:
    """Give every RMSNorm of `model` written as transformers' Llama one (same forward, a `weight` and a
    `variance_epsilon`, no forward of its own) the forward above (`remake_outputs`: a trained norm's output
    remembers its recipe, for a model whose layers remake what they keep; not under activation checkpointing);
    returns how many."""
    changed = 0
    for module in model.modules():
        if ("forward" in module.__dict__ or not isinstance(getattr(module, "weight", None), torch.nn.Parameter)
                or not hasattr(module, "variance_epsilon")
                or not same_code(type(module).forward, LlamaRMSNorm.forward)):
            continue
        forward = _remaking_output_forward if remake_outputs else _forward
        module.forward = types.MethodType(forward, module)
        changed += 1
    return changed
