"""Half-precision weight copies remade in the backward pass instead of kept from the forward pass.

Under autocast every linear layer multiplies a bf16/fp16 copy of its float32 weight, and the matmul
keeps that copy for the backward pass (the input's gradient needs it). By the end of the forward pass a
copy of every projection weight is alive at once: SmolLM2-135M's 106M projection weights hold 212 MB in
bf16, on top of the float32 weights they were made from, whether the weights train or not.

`recast_weights_in_backward` gives each float32 `nn.Linear` of one model its own forward: under autocast
with gradients on it makes the weight's copy itself and, through `torch.autograd.graph.saved_tensors_hooks`
around that one call, lets the matmul keep a reference to the float32 weight (alive anyway) in place of
the copy; the backward pass casts it again when it needs it. The cast is deterministic, so the numbers are
the same; a step pays one more cast of the weights (about 1% of an SFT step on SmolLM2 at 4 x 512 tokens, 7%
of the quickstart's short rows: `train/precision.recast_weights` says when it pays). Outside autocast,
without gradients and for weights already in half precision it is the plain linear layer.

Not for layers under activation checkpointing: those keep no weight copy anyway, and the hooks, being the
innermost, would keep the tensors of that call (the input) that checkpointing's own hooks would have
dropped (a checkpointed DPO step on SmolLM2 grew by ~1 GB).
"""

import types
from typing import Any

import torch
from torch.nn import functional


class _KeepSource:
    """The saved-tensor hooks of one linear call: a tensor that is (a view of) `copy` is stored as the
    float32 `source` it was cast from and the view's geometry; anything else is stored as it is."""

    def __init__(self, copy: torch.Tensor, source: torch.Tensor) -> None:
        self.storage = copy.untyped_storage().data_ptr()
        self.source = source

    def pack(self, tensor: torch.Tensor) -> Any:
        if tensor.untyped_storage().data_ptr() != self.storage:
            return tensor
        return (self.source, tensor.dtype, tensor.size(), tensor.stride(), tensor.storage_offset())

    @staticmethod
    def unpack(packed: Any) -> torch.Tensor:
        if torch.is_tensor(packed):
            return packed
        source, dtype, size, stride, offset = packed
        with torch.no_grad():
            return source.to(dtype).as_strided(size, stride, offset)


def _forward(self: torch.nn.Linear, x: torch.Tensor) -> torch.Tensor:
    weight = self.weight
    device = x.device.type
    if weight.dtype != torch.float32 or not torch.is_grad_enabled() or not torch.is_autocast_enabled(device):
        return functional.linear(x, weight, self.bias)
    copy = weight.to(torch.get_autocast_dtype(device))  # what autocast would make; its gradient is a cast back
    hooks = _KeepSource(copy, weight.detach())
    with torch.autograd.graph.saved_tensors_hooks(hooks.pack, hooks.unpack):
        return functional.linear(x, copy, self.bias)


def recast_weights_in_backward(model: torch.nn.Module) -> int:
    """Give every float32 `nn.Linear` of `model` on the CPU without a forward of its own (the oneDNN route,
    bf16-stored frozen weights, fused LoRA keep theirs) the forward above; returns how many layers."""
    recast = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear or "forward" in module.__dict__:
            continue
        if module.weight.dtype != torch.float32 or module.weight.device.type != "cpu":
            continue
        module.forward = types.MethodType(_forward, module)
        recast += 1
    return recast
