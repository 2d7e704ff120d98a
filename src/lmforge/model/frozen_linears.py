"""Frozen linear weights kept in bf16 for CPU training under bf16 autocast, where that loses nothing.

On a CPU with fast bf16, LoRA trains float32 weights under bf16 autocast (train/precision.py: bf16
norms and activations are slow there). Autocast then casts every frozen projection weight to bf16
again on each forward (SmolLM2-135M: 106M weights a step) and keeps those copies for the backward
pass. Most checkpoints are stored in bf16, so their float32 weights are exact bf16 values: holding
those in bf16 is lossless, halves their memory and leaves autocast nothing to cast.

`keep_frozen_linears_in_bf16` does that for the frozen `nn.Linear` weights of one model whose values
bf16 holds exactly (checked per weight), except the output head and any weight tied to the input
embeddings (the chunked loss and the embedding lookup read those in float32). Each such layer gets its
own forward: under autocast the plain linear (autocast casts the input); outside autocast the bf16
weight is upcast to the input's dtype for the call, the same float32 values as before. The numbers are
the same in both cases; only LoRA-style adapters (whose saved files hold no base weight) use it.
"""

import types

import torch
from torch.nn import functional


def _forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    weight = self.weight
    if not torch.is_autocast_enabled(x.device.type) and weight.dtype != x.dtype:
        weight = weight.to(x.dtype)  # exact: the weight was float32 holding bf16 values
    return functional.linear(x, weight, self.bias)


def stores_half_weight(layer: torch.nn.Module) -> bool:
    """Whether `keep_frozen_linears_in_bf16` stored `layer`'s frozen weight in bf16 (and gave it the forward above)."""
    forward = layer.__dict__.get("forward")
    return getattr(forward, "__func__", None) is _forward and layer.weight.dtype == torch.bfloat16


def _excluded(model: torch.nn.Module) -> set[int]:
    """The storages of the output head's and input embeddings' weights (tied ones are the same storage)."""
    excluded = set()
    for getter in ("get_output_embeddings", "get_input_embeddings"):
        module = getattr(model, getter, lambda: None)()
        if module is not None and getattr(module, "weight", None) is not None:
            excluded.add(module.weight.untyped_storage().data_ptr())
    return excluded


def keep_frozen_linears_in_bf16(model: torch.nn.Module) -> int:
    """Store the frozen float32 `nn.Linear` weights of `model` that bf16 represents exactly in bf16 (biases,
    few, stay float32); returns how many layers. Layers with their own forward already (the oneDNN
    route, fused LoRA's base) keep theirs and their float32 weight."""
    excluded = _excluded(model)
    kept = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear or "forward" in module.__dict__:
            continue
        weight = module.weight
        if (weight.requires_grad or weight.dtype != torch.float32 or weight.device.type != "cpu"
                or weight.untyped_storage().data_ptr() in excluded):
            continue
        half = weight.detach().to(torch.bfloat16)
        if not torch.equal(half.float(), weight.detach()):
            continue
        weight.data = half
        module.forward = types.MethodType(_forward, module)
        kept += 1
    return kept
