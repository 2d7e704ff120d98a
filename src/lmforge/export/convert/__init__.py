"""`lmforge convert SRC DST --from FORMAT`: foreign checkpoints -> verified Hugging Face folders.

One module per source format, each with `convert(source, out_dir, *, config, console)`.
"""

import importlib
from pathlib import Path

from rich.console import Console

from lmforge.errors import ExportError
from lmforge.export.convert.common import ConversionResult

SOURCE_FORMATS: dict[str, str] = {
    "gguf": "a llama.cpp GGUF file (dequantized to float32)",
    "zero": "a DeepSpeed ZeRO 1/2/3 checkpoint (global_stepN/ with `latest`)",
    "dcp": "a torch.distributed.checkpoint folder (FSDP, accelerate)",
    "bin": "pytorch_model*.bin weights, to safetensors",
    "sat": "a SwissArmyTransformer GLM / CogVLM-style language model",
    "repair": "a Hugging Face folder that loads wrongly (mixed formats, broken index, tied weights)",
}


def run_convert(source: Path, out_dir: Path, source_format: str, *, config: Path | None = None,
                console: Console | None = None) -> ConversionResult:
    if source_format not in SOURCE_FORMATS:
        known = ", ".join(SOURCE_FORMATS)
        raise ExportError(f"unknown source format `{source_format}`; known: {known}")
    if not source.exists():
        raise ExportError(f"{source}: no such file or folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ExportError(f"{out_dir} is not empty: convert into a new folder")
    module = importlib.import_module(f"lmforge.export.convert.{source_format}")
    return module.convert(source, out_dir, config=config, console=console)
