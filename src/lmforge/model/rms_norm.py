"""RMSNorm's normalised input remade in the backward pass instead of kept, where the norm's weight trains.

transformers' RMSNorm (Llama, Qwen2/3, Mistral, SmolLM3, ...) returns `weight * (x * rsqrt(mean(x²) + eps))`
computed in float32. When the weight trains (full fine-tuning; freeze with trainable norms) that last product
keeps the normalised input for the weight's gradient: a float32 tensor of the hidden width per token and norm
(SmolLM2-135M at 4 x 512 tokens: 61 norms, 275 MiB), although `x` and the scale it is made from are kept anyway
(by the multiplication that made it). `remake_normalised_inputs` gives each such norm a forward that computes
the same operations in the same order and keeps the recipe instead (saved_recipes.py): the backward pass
multiplies again, with the same numbers; a norm whose weight is frozen keeps nothing of the kind and runs as
before. The norm's output is not kept, but the half-precision copy of it that the next projections read and keep
for their weights' gradients is (shared_casts.py, 2 bytes per value instead of 4): the output's recipe is
remembered, so that copy is remade too (another 135 MiB on SmolLM2 at 4 x 512 tokens, ~0.5 ms a remake).

transformers kernelizes a model (the `kernels` package, one of its dependencies) when it loads and again on
every switch between training and evaluation mode (`model.train()`, which the Trainer calls every step): each
layer class it marks for hub kernels, RMSNorm among them, gets its class forward back, or a hub kernel, in
place of any forward of its own. `without_hub_kernels` turns that off for one model (transformers' own
`use_kernels` switch); the CPU, where these forwards are used, has no hub kernels to lose.
"""

import types
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.models.llama.modeling_llama import LlamaRMSNorm

from lmforge.model.saved_recipes import remade_in_backward, remember_recipe, same_code


def _forward(self: Any, hidden_states: torch.Tensor) -> torch.Tensor:
    input_dtype = hidden_states.dtype
    hidden_states = hidden_states.to(torch.float32)
    variance = hidden_states.pow(2).mean(-1, keepdim=True)
    scale = torch.rsqrt(variance + self.variance_epsilon)
    normalised = (hidden_states * scale).to(input_dtype)
    if not (torch.is_grad_enabled() and self.weight.requires_grad):
        return self.weight * normalised
    kept, factor, weight = hidden_states.detach(), scale.detach(), self.weight.detach()

    def remake() -> torch.Tensor:  # multiplications and a cast: autocast changes none, so it needs none of its state
        return (kept * factor).to(input_dtype)

    with remade_in_backward(normalised, remake):
        output = self.weight * normalised
    # the output itself is not kept, but the half-precision copy the projections read from it is (shared_casts.py)
    remember_recipe(output, lambda: weight * remake())
    return output


def without_hub_kernels(model: torch.nn.Module) -> int:
    """Switch off transformers' hub-kernel layers (`use_kernels`) in every part of `model` that has them on, so
    that a layer's own forward stays; returns how many parts were switched."""
    # PreTrainedModel's own switch (peft's wrappers would forward the attribute to the model they wrap)
    switched = [module for module in model.modules()
                if isinstance(module, PreTrainedModel) and getattr(module, "use_kernels", False) is True]
    for module in switched:
        module.use_kernels = False  # reverts the marked layers to their torch forwards, then leaves them alone
    return len(switched)


def remake_normalised_inputs(model: torch.nn.Module) -> int:
    """Give every RMSNorm of `model` written as transformers' Llama one (same forward, a `weight` and a
    `variance_epsilon`, no forward of its own) the forward above; returns how many."""
    changed = 0
    for module in model.modules():
        if ("forward" in module.__dict__ or not isinstance(getattr(module, "weight", None), torch.nn.Parameter)
                or not hasattr(module, "variance_epsilon")
                or not same_code(type(module).forward, LlamaRMSNorm.forward)):
            continue
        module.forward = types.MethodType(_forward, module)
        changed += 1
    return changed
