"""Opt-in speed-ups that only exist on CUDA: accepted everywhere, and they say when they do not apply."""

import logging
from importlib.util import find_spec
from typing import Any

import torch

from lmforge.config.groups import ModelGroup
from lmforge.errors import ModelError

logger = logging.getLogger(__name__)


def attn_implementation(group: ModelGroup) -> str | None:
    """The `attn_implementation` to ask transformers for; None lets it pick (sdpa where the model has it)."""
    wanted = group.attention
    if wanted == "auto":
        return None
    if wanted == "flash_attention_2":
        if not torch.cuda.is_available():
            logger.warning("attn_implementation flash_attention_2 is not applicable: it needs a CUDA GPU; "
                           "using sdpa")
            return "sdpa"
        if find_spec("flash_attn") is None:
            logger.warning("attn_implementation flash_attention_2 is not applicable: the `flash-attn` package is "
                           "not installed (pip install flash-attn); using sdpa")
            return "sdpa"
    return wanted


def apply_liger_kernel(model: Any, group: ModelGroup) -> None:
    """Swap in Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU, fused cross-entropy) on CUDA, on this
    model's instances (Liger's `_apply_liger_kernel_to_instance`)."""
    if not group.enable_liger_kernel:
        return
    if not torch.cuda.is_available():
        logger.warning("enable_liger_kernel is not applicable: Liger kernels are Triton GPU kernels and this "
                       "machine has no CUDA GPU; training without them")
        return
    if find_spec("liger_kernel") is None:
        raise ModelError("`enable_liger_kernel: true` needs the `liger-kernel` package: "
                         'pip install "lmforge[liger]"')
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model)
    logger.info("applied Liger kernels to %s", type(model).__name__)


# LLaMA-Factory's switches for other libraries' speed paths, and what lmforge uses instead.
INSTEAD = {
    "use_unsloth": "Unsloth is not used; lmforge trains with its own speed path (fused LoRA, packed attention, "
                   "chunked loss, oneDNN matmul on CPU; `enable_liger_kernel` for Liger's kernels on CUDA)",
    "use_unsloth_gc": "Unsloth's gradient checkpointing is not used; lmforge checkpoints with transformers' "
                      "(`gradient_checkpointing`, on for GPU training unless `disable_gradient_checkpointing`)",
    "use_v1_kernels": "LLaMA-Factory v1's kernels are not used; lmforge trains with its own speed path (fused "
                      "LoRA, packed attention, chunked loss; `enable_liger_kernel` for Liger's kernels on CUDA)",
}


def speed_path_notices(group: ModelGroup) -> None:
    """One line per LLaMA-Factory speed switch that is on, naming what lmforge uses instead."""
    for key, instead in INSTEAD.items():
        if getattr(group, key):
            logger.warning("%s: %s", key, instead)
