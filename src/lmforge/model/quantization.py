"""QLoRA: 4- or 8-bit base weights through bitsandbytes, which needs a CUDA GPU."""

from importlib.util import find_spec
from typing import Any

import torch

from lmforge.config.groups import ModelGroup
from lmforge.errors import ConfigError


def check_quantization_supported(args: ModelGroup) -> None:
    """Fail before anything loads when `quantization_bit` cannot work on this machine."""
    check_bits_supported(args.quantization_bit, "quantization_bit",
                         "remove `quantization_bit` to train LoRA on full-precision weights", method="QLoRA")


def check_bits_supported(bits: int | None, key: str, instead: str, method: str = "") -> None:
    """Fail before anything loads when loading in `bits` (the value of `key`) cannot work on this machine;
    `instead`: what to do without a GPU; `method`: the training method's name, said after the key."""
    if bits is None:
        return
    if not torch.cuda.is_available():
        named = f"`{key}: {bits}`" + (f" ({method})" if method else "")
        raise ConfigError(f"{named} quantizes through bitsandbytes, which needs a CUDA GPU, and this machine has none: "
                          f"{instead}")
    if find_spec("bitsandbytes") is None:
        raise ConfigError(f"`{key}: {bits}` needs the bitsandbytes package: "
                          "pip install 'lmforge[qlora]' (or pip install bitsandbytes)")


def quantization_config(args: ModelGroup, compute_dtype: torch.dtype) -> Any:
    """The BitsAndBytesConfig for `quantization_bit`, or None."""
    bits = args.quantization_bit
    if bits is None:
        return None
    check_quantization_supported(args)
    from transformers import BitsAndBytesConfig

    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_compute_dtype=compute_dtype,
        bnb_4bit_use_double_quant=args.double_quantization,
        bnb_4bit_quant_type=args.quantization_type,
        bnb_4bit_quant_storage=compute_dtype,
    )


def quantized_device_map(args: ModelGroup) -> Any:
    """Where quantized weights load: the current GPU, or spread over the GPUs (then CPU, then `offload_folder` on
    disk) by accelerate with `quantization_device_map: auto`, for inference of a model larger than one GPU."""
    if args.quantization_device_map == "auto":
        return "auto"
    return {"": torch.cuda.current_device()}
