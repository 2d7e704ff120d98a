"""GGUF -> Hugging Face folder, through transformers' own GGUF reader.

The low-level path lives here because the builtin SmolLM2 is built from a GGUF; `lmforge convert
--from gguf` (export/convert/gguf.py) adds the logit check on top.
"""

from pathlib import Path
from typing import Any

from lmforge.errors import ModelError


def load_gguf(gguf_file: Path) -> tuple[Any, Any]:
    """(model, tokenizer) as transformers reads the file: weights may stay packed in GGUF blocks."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_file.is_file():
        raise ModelError(f"GGUF file not found: {gguf_file}")
    folder, name = str(gguf_file.parent), gguf_file.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        packed = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except (ValueError, NotImplementedError) as err:
        raise ModelError(f"transformers cannot read the GGUF {gguf_file}: {err}") from None
    restore_pre_tokenizer(tokenizer, gguf_file)
    return packed, tokenizer


def restore_pre_tokenizer(tokenizer: Any, gguf_file: Path) -> None:
    """transformers' GGUF reader rebuilds single-regex splits only and reads a `smollm` file (SmolLM2) with
    GPT-2's split: give its tokenizer the split llama.cpp applies for that name and SmolLM2's own
    tokenizer.json has (every digit apart, then GPT-2's), so "2024" is four tokens as in training."""
    from gguf import GGUFReader
    from tokenizers import pre_tokenizers

    field = GGUFReader(gguf_file).fields.get("tokenizer.ggml.pre")
    if field is not None and field.contents() == "smollm":
        tokenizer.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True),
             pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])


def unpack_gguf_model(packed: Any) -> Any:
    """A plain float32 model with the GGUF model's weights.

    transformers keeps GGUF weights packed and refuses `save_pretrained` on them, so the weights are
    copied into a fresh model built from the same config (all keys must match).
    """
    import torch
    from transformers import AutoModelForCausalLM

    config = packed.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(packed.state_dict(), strict=False)
    if missing or unexpected:
        raise ModelError(f"the GGUF model does not match its architecture: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    model.generation_config = packed.generation_config
    return model


def gguf_to_hf(gguf_file: Path, out_dir: Path) -> None:
    """Dequantize `gguf_file` into a float32 safetensors folder with its tokenizer."""
    packed, tokenizer = load_gguf(gguf_file)
    unpack_gguf_model(packed).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
