"""`lmforge expand SOURCE OUT --num-expand K`: LLaMA-Pro block expansion (LLaMA-Factory's scripts/llama_pro.py)."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lmforge.cli.common import reporting_errors


def expand(
    source: Annotated[str, typer.Argument(help="The model: a local folder, a registered name or `builtin:NAME`.")],
    out_dir: Annotated[Path, typer.Argument(help="A new folder for the expanded model.")],
    num_expand: Annotated[int, typer.Option(help="Blocks to add; must divide the model's layer count.")],
) -> None:
    """Add K zero-initialised copies of every (N/K)-th layer (LLaMA-Pro); train them with `use_llama_pro: true`."""
    import transformers

    from lmforge.export.llama_pro import expand_blocks

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    result = expand_blocks(source, out_dir, num_expand)
    console = Console()
    console.print(f"expanded {source} from {result.layers_before} to {result.layers_after} layers into {out_dir} "
                  f"(new blocks {', '.join(map(str, result.new_blocks))}; logits unchanged, max difference "
                  f"{result.max_logit_difference:.2g})", markup=False)
    console.print(f"train the new blocks with: model_name_or_path: {out_dir}, finetuning_type: freeze, "
                  f"freeze_trainable_layers: {num_expand}, use_llama_pro: true", markup=False)


def register(app: typer.Typer) -> None:
    app.command(name="expand")(reporting_errors(expand))
