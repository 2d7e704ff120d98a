"""What is trained (`finetuning_type`): all weights, some layers (`freeze`), or LoRA or OFT adapters."""

import logging
from typing import Any

import torch

from lmforge.config.groups import FinetuningGroup
from lmforge.model.freeze import apply_freeze, freeze_parts
from lmforge.model.kind import ModelKind
from lmforge.model.lora import apply_lora, merge_adapters
from lmforge.model.oft import apply_oft

logger = logging.getLogger(__name__)

__all__ = ["apply_finetuning", "count_parameters", "merge_adapters"]  # merge_adapters: for chat and export


def _upcast_trainable(model: torch.nn.Module) -> None:
    """Trainable weights in float32 even when the frozen base is half precision: optimizer updates of
    half-precision weights lose small steps to rounding (not under `pure_bf16`, which asks for bf16 weights
    throughout, as LLaMA-Factory's does)."""
    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.float16, torch.bfloat16):
            param.data = param.data.float()


def apply_finetuning(model: Any, ft: FinetuningGroup, kind: ModelKind, *, adapters: list[str] | None = None,
                     new_tokens: bool = False, sharded: bool = False, output_dir: str | None = None) -> Any:
    """Make `model` trainable as `finetuning_type` asks; returns the model to train. `adapters`
    (`adapter_name_or_path`), `sharded` and `output_dir` are what LoRA needs to know about the run."""
    method = ft.finetuning_type
    if method == "full":
        model.requires_grad_(True)
        freeze_parts(model, ft)
    elif method == "freeze":
        apply_freeze(model, ft)
    elif method == "oft":
        model = apply_oft(model, ft, kind, new_tokens=new_tokens)
    else:
        model = apply_lora(model, ft, kind, adapters=adapters or [], new_tokens=new_tokens, sharded=sharded,
                           output_dir=output_dir)
    if not ft.pure_bf16:
        _upcast_trainable(model)
    return model


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(_weights_held(p) for p in model.parameters())
    return trainable, total


def _weights_held(parameter: torch.Tensor) -> int:
    """How many weights a parameter holds: a 4-bit one packs several into each element of its storage, and its
    quantization state keeps the unpacked shape."""
    state = getattr(parameter, "quant_state", None)
    return state.shape.numel() if state is not None else parameter.numel()


def parameter_status(model: torch.nn.Module) -> str:
    """One line per parameter: name, dtype, device and whether it trains (`print_param_status`)."""
    return "\n".join(f"{name}: {str(p.dtype).removeprefix('torch.')}, {p.device}, "
                      + ("trainable" if p.requires_grad else "frozen") for name, p in model.named_parameters())
