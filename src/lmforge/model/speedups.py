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
        raise ModelError("`enable_liger_kernel: true` needs the `liger-kernel` package: pip install liger-kernel")
    from liger_kernel.transformers import _apply_liger_kernel_to_instance

    _apply_liger_kernel_to_instance(model=model)
    logger.info("applied Liger kernels to %s", type(model).__name__)
