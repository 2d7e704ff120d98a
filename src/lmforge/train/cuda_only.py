"""TrainingArguments switches that only act on CUDA GPUs: elsewhere each is turned off with a warning and the
run goes on, as `enable_liger_kernel` and `attn_implementation: flash_attention_2` do (`model/speedups.py`).

Left as written, transformers refuses them when it builds the Trainer's arguments (`tf32`, `ddp_backend: nccl`)
or at the first step (`use_liger_kernel`): after the model has loaded, with a traceback. A config written for a
GPU runs unchanged on a CPU, or on a GPU older than Ampere.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CudaOnlySwitch:
    value: Any  # the setting that needs the hardware
    available: Callable[[], bool]
    reason: str  # why it does not act here, and what the run does instead
    replacement: Any  # the value the run uses without the hardware


def _tf32_available() -> bool:
    from transformers.utils import is_torch_tf32_available

    return is_torch_tf32_available()


CUDA_ONLY_SWITCHES: dict[str, CudaOnlySwitch] = {
    "use_liger_kernel": CudaOnlySwitch(True, torch.cuda.is_available, "Liger kernels are Triton GPU kernels and "
                                       "this machine has no CUDA GPU; running without them", False),
    "tf32": CudaOnlySwitch(True, _tf32_available, "TF32 is a matmul mode of NVIDIA GPUs from Ampere on, which this "
                           "machine lacks; running in full float32", None),
    "ddp_backend": CudaOnlySwitch("nccl", torch.cuda.is_available, "NCCL connects CUDA GPUs and this machine has "
                                  "none; processes use gloo", None),
}


def without_cuda_only_switches(kwargs: dict[str, Any]) -> dict[str, Any]:
    """`kwargs` with the switches this machine cannot act on replaced (a warning for each)."""
    kept = dict(kwargs)
    for key, switch in CUDA_ONLY_SWITCHES.items():
        if kept.get(key) == switch.value and not switch.available():
            written = "true" if switch.value is True else switch.value
            logger.warning("`%s: %s` is not applicable: %s", key, written, switch.reason)
            kept[key] = switch.replacement
    return kept
