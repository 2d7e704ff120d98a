"""`--from bin`: `pytorch_model*.bin` weights (torch.save pickles) -> safetensors.

The `.bin` set is used even where safetensors sit beside it; the folder checks of `repair` apply
(incomplete index, wrapper keys such as `module`, tied weights). A single `.bin` file works too,
with its config beside it or given by `--config`.
"""

import shutil
import tempfile
from pathlib import Path

from rich.console import Console

from lmforge.errors import ExportError
from lmforge.export.convert import repair
from lmforge.export.convert.common import ConversionResult, copy_side_files


def convert(source: Path, out_dir: Path, *, config: Path | None = None,
            console: Console | None = None) -> ConversionResult:
    if source.is_file():  # one .bin file: stage it as a folder with its config
        with tempfile.TemporaryDirectory() as scratch:
            staged = Path(scratch)
            (staged / "pytorch_model.bin").symlink_to(source.resolve())
            copy_side_files(source.parent, staged)
            config_file = config or source.parent / "config.json"
            if config_file.is_file():
                shutil.copy2(config_file, staged / "config.json")
            return repair.convert(staged, out_dir, config=config if config and config.is_dir() else None,
                                  console=console, prefer="bin")
    if repair.inspect_set(source, "bin") is None:
        raise ExportError(f"{source} holds no pytorch_model*.bin weights; for other folders use `--from repair`")
    return repair.convert(source, out_dir, config=config, console=console, prefer="bin")
