"""FP8 training (`fp8`, `fp8_backend`, `fp8_enable_fsdp_float8_all_gather`, LLaMA-Factory's keys) through accelerate.

accelerate's `fp8` mixed precision swaps the linear layers for torchao's (or Transformer Engine's) FP8 ones and
autocasts the rest in bf16. It is configured the way `accelerate launch --mixed_precision fp8` configures it: the
`ACCELERATE_MIXED_PRECISION` / `ACCELERATE_FP8_*` variables, read when the Trainer builds its arguments and its
Accelerator, set only while the trainer is built. FP8 matrix products need an NVIDIA GPU with FP8 tensor cores
(compute capability 8.9+); elsewhere the run is refused before anything loads.
"""

from contextlib import AbstractContextManager
from importlib.util import find_spec
from typing import Any

import torch

from lmforge.errors import ConfigError
from lmforge.train.environment import environment_set

MIN_CAPABILITY = (8, 9)  # Ada; Hopper is 9.0
BACKENDS = {"torchao": ("AO", "torchao", "pip install torchao"),
            "te": ("TE", "transformer_engine", 'pip install "transformer-engine[pytorch]"')}


def _installed_backend(choice: str) -> str:
    """The backend `fp8_backend` names, or for `auto` the first installed (torchao, then Transformer Engine)."""
    names = [choice] if choice != "auto" else list(BACKENDS)
    for name in names:
        if find_spec(BACKENDS[name][1]) is not None:
            return name
    installs = " or ".join(f"`{BACKENDS[name][2]}`" for name in names)
    raise ConfigError(f"`fp8: true` needs an FP8 library for its linear layers ({installs})")


def check_fp8(training: Any) -> None:
    """Refuse what FP8 cannot run on, with what it needs; `training`: the training group."""
    if not training.fp8:
        return
    if training.fp16:
        raise ConfigError("`fp8: true` runs everything but the linear layers in bf16: remove `fp16`")
    if not torch.cuda.is_available():
        raise ConfigError("`fp8: true` trains in FP8, which needs an NVIDIA GPU with FP8 tensor cores (compute "
                          "capability 8.9 or newer: Ada, Hopper, Blackwell) and this machine has no CUDA GPU: remove "
                          "`fp8` (`bf16: true` is the closest precision a CPU has)")
    capability = torch.cuda.get_device_capability()
    if capability < MIN_CAPABILITY:
        raise ConfigError(f"`fp8: true` needs FP8 tensor cores (compute capability 8.9 or newer: Ada, Hopper, "
                          f"Blackwell); {torch.cuda.get_device_name()} is {capability[0]}.{capability[1]}: remove "
                          "`fp8` and train in bf16")
    if training.fp8_enable_fsdp_float8_all_gather and _installed_backend(training.fp8_backend) != "torchao":
        raise ConfigError("`fp8_enable_fsdp_float8_all_gather` is torchao's: set `fp8_backend: torchao`")
    _installed_backend(training.fp8_backend)


def fp8_environment(training: Any) -> dict[str, str]:
    """accelerate's variables for this run's FP8 (empty without `fp8`)."""
    if not training.fp8:
        return {}
    backend = BACKENDS[_installed_backend(training.fp8_backend)][0]
    return {"ACCELERATE_MIXED_PRECISION": "fp8", "ACCELERATE_FP8_BACKEND": backend,
            "ACCELERATE_FP8_ENABLE_FSDP_FLOAT8_ALL_GATHER": str(training.fp8_enable_fsdp_float8_all_gather).lower()}


def fp8_accelerate(training: Any) -> AbstractContextManager[None]:
    """accelerate's FP8 variables while the trainer (its arguments and Accelerator) is built, then as before."""
    return environment_set(fp8_environment(training))
