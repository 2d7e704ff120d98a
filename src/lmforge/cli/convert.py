"""`lmforge convert SRC DST --from FORMAT`: foreign checkpoints to verified Hugging Face folders."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lmforge.cli.common import reporting_errors

FORMATS_HELP = "gguf, zero, dcp, bin, sat or repair (see docs/export.md)"


def convert(
    source: Annotated[Path, typer.Argument(help="The checkpoint: a file (.gguf, .bin) or a folder.")],
    out_dir: Annotated[Path, typer.Argument(help="A new folder for the Hugging Face model.")],
    source_format: Annotated[str, typer.Option("--from", help=f"Source format: {FORMATS_HELP}.")],
    config: Annotated[Path | None, typer.Option(
        help="config.json (or its folder) when the checkpoint has none.")] = None,
) -> None:
    """Convert a checkpoint to a Hugging Face folder, then reload it and compare its logits with the source."""
    import transformers

    from lmforge.export.convert import run_convert

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    console = Console()
    result = run_convert(source, out_dir, source_format, config=config, console=console)
    console.print(f"converted {source} -> {result.out_dir}: "
                  f"{', '.join(sorted(p.name for p in result.out_dir.iterdir()))}", markup=False)


def register(app: typer.Typer) -> None:
    app.command(name="convert")(reporting_errors(convert))
