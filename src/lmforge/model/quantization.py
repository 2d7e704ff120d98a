"""QLoRA: 4- or 8-bit base weights through bitsandbytes, on a CUDA GPU or on the CPU (bitsandbytes' CPU backend)."""

from importlib.metadata import version
from importlib.util import find_spec
from typing import Any

import torch
from packaging.version import Version

from lmforge.config.groups import ModelGroup
from lmforge.errors import ConfigError

# bitsandbytes quantizes on the CPU from 0.47 (0.46's CPU backend cannot dequantize the bf16/fp32 storage QLoRA uses)
CPU_BITSANDBYTES = Version("0.47.0")


def check_quantization_supported(args: ModelGroup) -> None:
    """Fail before anything loads when `quantization_bit` cannot work on this machine."""
    check_bits_supported(args.quantization_bit, "quantization_bit", method="QLoRA")


def bitsandbytes_problem(bits: int | None, key: str, method: str = "") -> str | None:
    """Why loading in `bits` (the value of `key`; `method`: the training method's name, said after the key)
    through bitsandbytes cannot work here, with the fix; None when it can."""
    if bits is None:
        return None
    named = f"`{key}: {bits}`" + (f" ({method})" if method else "")
    if find_spec("bitsandbytes") is None:
        return f"{named} needs the bitsandbytes package: pip install 'lmforge[qlora]' (or pip install bitsandbytes)"
    installed = Version(version("bitsandbytes"))
    if not torch.cuda.is_available() and installed < CPU_BITSANDBYTES:
        return (f"{named} on a machine without a CUDA GPU needs bitsandbytes' CPU backend, which bitsandbytes "
                f"{installed} lacks: pip install -U 'bitsandbytes>={CPU_BITSANDBYTES}'")
    return None


def check_bits_supported(bits: int | None, key: str, method: str = "") -> None:
    """Fail before anything loads when loading in `bits` (the value of `key`) cannot work on this machine."""
    problem = bitsandbytes_problem(bits, key, method)
    if problem:
        raise ConfigError(problem)


def quantization_config(args: ModelGroup, compute_dtype: torch.dtype, keep: list[str] | None = None) -> Any:
    """The BitsAndBytesConfig for `quantization_bit`, or None. `keep`: the names of modules left unquantized in
    place of transformers' choice (the output head), such as a reward model's score head."""
    bits = args.quantization_bit
    if bits is None:
        return None
    check_quantization_supported(args)
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=keep)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        llm_int8_skip_modules=keep,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=args.double_quantization,
        bnb_4bit_quant_type=args.quantization_type,
        bnb_4bit_quant_storage=compute_dtype,
    )


def quantized_device_map(args: ModelGroup) -> Any:
    """Where quantized weights load: the current GPU (the CPU on a machine without one), or spread over the GPUs
    (then CPU, then `offload_folder` on disk) by accelerate with `quantization_device_map: auto`, for inference of
    a model larger than one GPU."""
    if args.quantization_device_map == "auto":
        return "auto"
    return {"": torch.cuda.current_device() if torch.cuda.is_available() else "cpu"}


# bitsandbytes' CPU kernel for 4-bit inference (AVX512-BF16) repacks each weight in blocks of this many output rows
CPU_PACKED_ROWS = 32


def keep_cpu_kernel_to_packable_layers(model: torch.nn.Module) -> None:
    """On this model only, layers bitsandbytes' packed CPU kernel asserts on use its generic dequantizing path:
    an output size not a multiple of `CPU_PACKED_ROWS`, or an input size not a multiple of the quantization block
    (a tiny model's MLP, an MoE router)."""
    for module in model.modules():
        if not getattr(module, "support_avx512bf16_for_cpu", False):
            continue
        state = module.weight.quant_state
        if module.out_features % CPU_PACKED_ROWS or module.in_features % state.blocksize:
            module.support_avx512bf16_for_cpu = False
