"""GGUF -> Hugging Face folder, through transformers' own GGUF reader."""

from pathlib import Path

from lmforge.errors import ModelError


def gguf_to_hf(gguf_file: Path, out_dir: Path) -> None:
    """Dequantize `gguf_file` into a float32 safetensors folder with its tokenizer.

    transformers keeps GGUF weights packed and refuses `save_pretrained` on them, so the weights are
    copied into a fresh model built from the same config (all keys must match).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not gguf_file.is_file():
        raise ModelError(f"GGUF file not found: {gguf_file}")
    folder, name = str(gguf_file.parent), gguf_file.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    packed = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = packed.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(packed.state_dict(), strict=False)
    if missing or unexpected:
        raise ModelError(f"GGUF {gguf_file} does not match its architecture: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    model.generation_config = packed.generation_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
