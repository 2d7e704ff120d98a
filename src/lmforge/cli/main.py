"""`lmforge` commands. Heavy imports happen inside commands, after the config loads, so `--help` and a config
error answer without torch (tests/cli/test_startup.py).

A command is one module under `cli/` with a `register(app)` function, listed once in COMMAND_MODULES.
"""

from lmforge.cli.allocator import relaunch_with_tcmalloc

# First, before the command modules load: the allocator is chosen when a process starts (cli/allocator.py), and
# everything imported before the re-execution would be imported twice.
relaunch_with_tcmalloc()

import os  # noqa: E402 (after the re-execution above)
import sys  # noqa: E402
import warnings  # noqa: E402
from typing import Annotated  # noqa: E402

import typer  # noqa: E402

from lmforge.cli import convert, data, env, evaluate, expand, export, models, serve, template, train  # noqa: E402
from lmforge.cli.common import err_console, set_debug  # noqa: E402
from lmforge.cli.quiet import hide_unactionable_output  # noqa: E402
from lmforge.train.launch import is_worker  # noqa: E402

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# torch before 2.8 starts its Triton compile-worker processes as soon as anything imports inductor (bitsandbytes does,
# from peft's LoRA layers) though nothing is compiled: memory, and their tracebacks on Ctrl-C. `torch_compile` still
# gets them, started at its first compile. A user's own TORCH_WARM_POOL is kept.
os.environ.setdefault("TORCH_WARM_POOL", "0")
# peft still calls this deprecated transformers property on every model; it is not the user's concern
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune, chat with and export language models from one YAML file.")

# in the order `lmforge --help` lists them
COMMAND_MODULES = (convert, train, evaluate, export, expand, env, data, serve, template, models)
for module in COMMAND_MODULES:
    module.register(app)


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
             verbose: Annotated[bool, typer.Option("--verbose", help="Show the libraries' progress bars, info "
                                                   "logs and deprecation notices.")] = False) -> None:
    set_debug(debug)
    hide_unactionable_output(verbose)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        if not is_worker():  # a torchrun worker: `lmforge train`, which launched it, says how the run ended
            err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
