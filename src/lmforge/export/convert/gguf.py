"""`--from gguf`: a GGUF file -> a float32 safetensors folder with its tokenizer and chat template.

transformers reads the file (dequantizing, or keeping blocks packed where it has kernels); the
weights are copied into a plain model, saved, and the saved folder must reproduce the logits of
the model as transformers runs it from the GGUF itself.
"""

from pathlib import Path

from rich.console import Console

from lmforge.errors import ExportError, ModelError
from lmforge.export.convert.common import ConversionResult, save_and_verify
from lmforge.hub.gguf import load_gguf, unpack_gguf_model


def convert(source: Path, out_dir: Path, *, config: Path | None = None,
            console: Console | None = None) -> ConversionResult:
    if source.is_dir():
        files = sorted(source.glob("*.gguf"))
        if len(files) != 1:
            raise ExportError(f"{source} holds {len(files)} .gguf files: name the one to convert")
        source = files[0]
    if config is not None:
        raise ExportError("a GGUF file carries its own config; drop `--config`")
    try:
        packed, tokenizer = load_gguf(source)
        model = unpack_gguf_model(packed)
    except ModelError as err:
        raise ExportError(str(err)) from None
    return save_and_verify(model, out_dir, what=f"GGUF {source.name}", tokenizer=tokenizer, console=console,
                           reference_model=packed)
