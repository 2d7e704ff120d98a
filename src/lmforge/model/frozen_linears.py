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

Loaded in float32, those weights pass through float32 on their way to bf16: a 1.2B checkpoint's load peaked at
twice its bf16 size plus the file's pages. `float32_except_linears` is the other way in, for a checkpoint stored
in bf16 (`stored_float_dtype`): the model is loaded in bf16 (its weights read straight from the file) and everything
but those linear weights is cast to float32, the values a float32 load has (buffers that the model computes
rather than loads are taken from a float32 build of it), so they are never held in float32 at all.
"""

import json
import types
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch.nn import functional

# safetensors' names of the floating dtypes a checkpoint stores
STORED_FLOAT_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64}


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
    few, stay float32), and keep those already loaded in bf16 (`float32_except_linears`); returns how many layers.
    Layers with their own forward already (the oneDNN route, fused LoRA's base) keep theirs and a float32
    weight."""
    excluded = _excluded(model)
    kept = 0
    for module in model.modules():
        if type(module) is not torch.nn.Linear:
            continue
        weight = module.weight
        keepable = ("forward" not in module.__dict__ and not weight.requires_grad and weight.device.type == "cpu"
                    and weight.untyped_storage().data_ptr() not in excluded)
        if weight.dtype == torch.bfloat16 and not keepable:  # loaded in bf16 for a layer that computes in float32
            weight.data = weight.data.float()
            continue
        if not keepable or weight.dtype not in (torch.float32, torch.bfloat16):
            continue
        if weight.dtype == torch.float32:
            half = weight.detach().to(torch.bfloat16)
            if not torch.equal(half.float(), weight.detach()):
                continue
            weight.data = half
        module.forward = types.MethodType(_forward, module)
        kept += 1
    return kept


def stored_float_dtype(folder: str | Path) -> torch.dtype | None:
    """The one floating dtype that every weight of the safetensors checkpoint in the local `folder` is stored in;
    None for several dtypes, another format, no such folder or files it cannot read (loading reports those)."""
    root = Path(folder)
    index = root / "model.safetensors.index.json"
    stored: set[str] = set()
    try:
        if index.is_file():
            files = sorted({root / name for name in json.loads(index.read_text())["weight_map"].values()})
        else:
            files = [root / "model.safetensors"]
        if not all(file.is_file() for file in files):
            return None
        for file in files:
            with safe_open(file, framework="pt") as handle:
                names = handle.keys()  # the handle itself is not iterable
                stored.update(handle.get_slice(name).get_dtype() for name in names)
    except (OSError, ValueError, KeyError, TypeError, SafetensorError):  # JSONDecodeError is a ValueError
        return None
    if any(name not in STORED_FLOAT_DTYPES and name[0] not in "IUB" for name in stored):
        return None  # float8 and other formats a float32 load would convert differently; I64, U8, BOOL are never cast
    floats = {STORED_FLOAT_DTYPES[name] for name in stored if name in STORED_FLOAT_DTYPES}
    return floats.pop() if len(floats) == 1 else None


def float32_buffers(auto_class: Any, config: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
    """The floating buffers that a float32 build of the model computes (rotary frequencies, embedding scales):
    built with its parameters on the meta device, so nothing the size of the weights is allocated."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        skeleton = auto_class.from_config(config, dtype=torch.float32, **kwargs)
    return {name: buffer for name, buffer in skeleton.named_buffers(remove_duplicate=False)
            if buffer.is_floating_point()}


def float32_except_linears(model: torch.nn.Module, computed_buffers: dict[str, torch.Tensor]) -> int:
    """Make `model`, loaded in a checkpoint's stored bf16, what a float32 load of that checkpoint is except for its
    `nn.Linear` weights (not the output head's or the input embeddings'), which stay bf16 for
    `keep_frozen_linears_in_bf16`: every other floating parameter cast to float32 (exact), each buffer the model
    computes rather than loads taken from `computed_buffers` (`float32_buffers`), the loaded ones cast. Returns
    how many linear weights stayed bf16."""
    excluded = _excluded(model)
    linears = {id(module.weight) for module in model.modules() if type(module) is torch.nn.Linear
               and module.weight.untyped_storage().data_ptr() not in excluded}
    for param in model.parameters():
        if param.is_floating_point() and param.dtype != torch.float32 and id(param) not in linears:
            param.data = param.data.float()
    loaded = set(model.state_dict())  # persistent buffers: the checkpoint's values
    for name, buffer in list(model.named_buffers(remove_duplicate=False)):  # shared ones under each name
        if not buffer.is_floating_point() or buffer.dtype == torch.float32:
            continue
        owner, _, attribute = name.rpartition(".")
        computed = computed_buffers.get(name)
        value = computed if name not in loaded and computed is not None else buffer.float()
        setattr(model.get_submodule(owner), attribute, value.to(buffer.device))  # stays a buffer, as persistent
    return len(linears)
