"""Device-dependent training defaults: compute dtype and gradient checkpointing.

Compute dtype, when neither `bf16` nor `fp16` is set: bf16 on a GPU that supports it, else fp16 on a
GPU, else fp32 (CPU). LoRA and freeze load the frozen base weights in that dtype (half the memory);
full fine-tuning keeps float32 master weights and lets the Trainer autocast.

Gradient checkpointing, when neither `gradient_checkpointing` nor `activation_checkpointing` is
set: on for GPU training, where activation memory is what limits batch and sequence length; off on
CPU, where activations live in host RAM (rarely the limit for models small enough to train on a
CPU) and recomputing them costs about a fifth of the step time (LLaMA-Factory keeps it on there:
~22% slower on our 2-core runs).
"""

from typing import Any

import torch

from lmforge.config import LmforgeConfig


def _accelerator() -> bool:
    return torch.cuda.is_available()


def compute_dtype(cfg: LmforgeConfig) -> torch.dtype:
    if cfg.training.bf16 or cfg.finetuning.pure_bf16:
        return torch.bfloat16
    if cfg.training.fp16:
        return torch.float16
    if cfg.training.bf16 is None and cfg.training.fp16 is None and _accelerator():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def training_load_dtype(cfg: LmforgeConfig) -> torch.dtype:
    """The dtype the base weights are loaded in for training (`pure_bf16`: bf16 for full fine-tuning too)."""
    if cfg.finetuning.finetuning_type == "full" and not cfg.finetuning.pure_bf16:
        return torch.float32
    return compute_dtype(cfg)


def training_defaults(cfg: LmforgeConfig) -> dict[str, Any]:
    """TrainingArguments lmforge fills in by device when the user set nothing."""
    defaults: dict[str, Any] = {}
    dtype = compute_dtype(cfg)
    # pure_bf16 computes in the weights' own bf16: no mixed-precision autocast
    if cfg.training.bf16 is None and cfg.training.fp16 is None and dtype != torch.float32 \
            and not cfg.finetuning.pure_bf16:
        defaults["bf16" if dtype == torch.bfloat16 else "fp16"] = True
    # transformers 5 renamed gradient_checkpointing to activation_checkpointing; either name counts as set
    training = cfg.training
    if training.gradient_checkpointing is None and training.activation_checkpointing is None:
        defaults["activation_checkpointing"] = _accelerator()
    if training.gradient_checkpointing_kwargs is None and training.activation_checkpointing_kwargs is None:
        # non-reentrant checkpointing works with frozen inputs (LoRA, freeze) without extra hooks
        defaults["activation_checkpointing_kwargs"] = {"use_reentrant": False}
    return defaults
