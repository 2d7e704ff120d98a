"""`lmforge` commands. Heavy imports happen inside commands, after the config loads, so `--help` and a config
error answer without torch (tests/cli/test_startup.py).

A command is one module under `cli/` with a `register(app)` function, listed once in COMMAND_MODULES.
"""

import os
import sys
import warnings
from typing import Annotated

import typer

from lmforge.cli import convert, data, env, evaluate, expand, export, models, serve, template, train
from lmforge.cli.allocator import relaunch_with_tcmalloc
from lmforge.cli.common import err_console, set_debug
from lmforge.cli.quiet import hide_unactionable_output
from lmforge.train.launch import is_worker

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
    if len(sys.argv) > 1 and not {"--help", "-h"} & set(sys.argv[1:]):
        relaunch_with_tcmalloc()  # the allocator is chosen at process start (cli/allocator.py)
    try:
        app()
    except KeyboardInterrupt:
        if not is_worker():  # a torchrun worker: `lmforge train`, which launched it, says how the run ended
            err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
