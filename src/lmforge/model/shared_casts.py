"""One half-precision copy of a layer input that several projections read, under autocast.

Under mixed precision (fp32 weights and residual stream, autocast computing in bf16/fp16) a decoder
layer's normalised hidden state is float32, and every linear layer that reads it casts it again: q, k
and v each make their own bf16 copy, and with LoRA each adapter's `lora_A` one more (peft first casts
it back to the adapter's float32); the MLP's gate and up the same. The copies that a layer with trainable
weights reads are kept for the backward pass (`lora_A`'s, or every projection's in full fine-tuning).

`share_input_casts` gives each linear layer of one model a forward pre-hook that, under autocast,
hands it the autocast dtype's copy of a float32 input, made once per input tensor: the layers that
read the same tensor get the same copy, each through its own autograd node. The numbers are unchanged:
autocast would round the same tensor the same way for each of them, and each reader's gradient is
converted to float32 before the readers' gradients are summed, as with autocast's separate casts.
Outside autocast, and for inputs already in half precision (o_proj, down_proj), the hooks do nothing. When the
float32 input has a remembered recipe (a trained RMSNorm's output, model/rms_norm.py), its copy gets one too, so
the layers that keep it for the backward pass can keep the recipe instead (model/saved_recipes.py).

Those half-precision inputs meet one more cast first: peft casts a LoRA layer's input to its adapter's
dtype (float32) before `lora_A`, which autocast then casts back to bf16, and the backward pass does both
again for the gradient (on an AMX CPU a visible share of a SmolLM2 LoRA step: BENCHMARKS.md's profile).
`adapter_inputs_as_they_come` turns that cast off per LoRA layer (peft's own switch,
`cast_input_dtype_enabled`) for a model trained in float32 under autocast: bf16 -> float32 -> bf16 is
exact both ways, so the numbers are the same; a float32 input was never cast.
"""

import weakref
from typing import Any

import torch

from lmforge.model.saved_recipes import recipe_of, remember_recipe


class _SharedCast(torch.autograd.Function):
    """The precomputed half-precision copy of `source`, with the gradient of a plain cast (to float32 per
    reader, so the readers' gradients are summed in float32)."""

    @staticmethod
    def forward(ctx: Any, source: torch.Tensor, holder: tuple[torch.Tensor]) -> torch.Tensor:
        # the copy travels in a tuple: an output that is a view of a tensor input would be an autograd view
        ctx.source_dtype = source.dtype
        return holder[0].view_as(holder[0])

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.to(ctx.source_dtype), None


def cast_reader(source: torch.Tensor, copy: torch.Tensor) -> torch.Tensor:
    """`copy`, a half-precision cast of `source` made once, as one reader's own input: its gradient is a plain
    cast's (to `source`'s dtype), so the gradients of several readers are summed in `source`'s precision."""
    return _SharedCast.apply(source, (copy,))


class _InputCasts:
    """The last float32 input seen by any linear layer of one model and its half-precision copy."""

    def __init__(self) -> None:
        self.source: weakref.ref | None = None
        self.version = -1
        self.copy: torch.Tensor | None = None

    def __call__(self, module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        hidden = args[0] if args and torch.is_tensor(args[0]) else None
        if hidden is None or hidden.dtype != torch.float32 or not torch.is_autocast_enabled(hidden.device.type):
            return None
        device = hidden.device.type
        if self.source is None or self.source() is not hidden or self.version != hidden._version:
            dtype = torch.get_autocast_dtype(device)
            with torch.no_grad():
                self.copy = hidden.to(dtype)
            self.source, self.version = weakref.ref(hidden), hidden._version
            source_recipe = recipe_of(hidden)
            if source_recipe is not None:  # the input can be made again (a trained RMSNorm's output): so can the copy
                remember_recipe(self.copy, lambda: source_recipe().to(dtype))
        shared = _SharedCast.apply(hidden, (self.copy,)) if hidden.requires_grad else self.copy
        return (shared, *args[1:])


def share_input_casts(model: torch.nn.Module) -> int:
    """Hook every `nn.Linear` of `model` (peft's adapter layers hold theirs: the base layer and `lora_A`) to
    share the half-precision copies of their inputs under autocast; returns how many were hooked."""
    casts = _InputCasts()
    linears = [module for module in model.modules() if type(module) is torch.nn.Linear]
    for module in linears:
        module.register_forward_pre_hook(casts)
        module.__dict__["_lmforge_input_casts"] = casts
    return len(linears)


def half_precision_input(linear: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """The input `linear` multiplies under autocast, for code that calls its product itself: the shared copy where
    `share_input_casts` hooked it, else autocast's own cast."""
    casts = linear.__dict__.get("_lmforge_input_casts")
    shared = casts(linear, (x,)) if casts is not None else None
    if shared is not None:
        return shared[0]
    dtype = torch.get_autocast_dtype(x.device.type)
    return x if x.dtype == dtype else x.to(dtype)


def adapter_inputs_as_they_come(model: torch.nn.Module) -> int:
    """Stop peft casting the inputs of `model`'s adapter layers to the adapters' dtype (see above); for float32
    weights trained under autocast only. Returns how many layers."""
    layers = [module for module in model.modules() if hasattr(module, "cast_input_dtype_enabled")]
    for module in layers:
        module.cast_input_dtype_enabled = False
    return len(layers)
