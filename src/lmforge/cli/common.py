"""What every `lmforge` command shares: consoles, argument types, error reporting and config loading.

Each command module registers its commands with `register(app)`; `cli/main.py` lists the modules.
"""

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from lmforge.errors import LmforgeError

console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

ConfigArg = Annotated[Path, typer.Argument(help="YAML config file (LLaMA-Factory keys work as they are).")]
OverridesArg = Annotated[list[str] | None, typer.Argument(help="key=value overrides, applied on top.")]


def set_debug(debug: bool) -> None:
    """`--debug`: let our errors raise with their traceback."""
    _state["debug"] = debug


def run_reporting_errors(action: Callable[[], Any]) -> Any:
    """Run a command body; our errors become one readable message (traceback with --debug)."""
    try:
        return action()
    except LmforgeError as err:
        if _state["debug"]:
            raise
        # escaped: the fix often names an extra (`pip install "lmforge[gptq]"`), which rich would read as markup
        err_console.print(f"[bold red]error:[/bold red] {escape(str(err))}", highlight=False)
        raise typer.Exit(code=1) from None


def reporting_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command function whose whole body runs through `run_reporting_errors`."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return run_reporting_errors(lambda: command(*args, **kwargs))

    return wrapper


def show_notices(cfg: Any) -> None:
    """How the config was read (a LLaMA-Factory v1 config as flat keys), before the command's own output."""
    for notice in cfg.notices:
        console.print(f"note: {notice}", style="cyan", highlight=False, markup=False)


def load_command_config(config: Path | None, overrides: list[str] | None, extra: tuple[str, ...] = ()) -> Any:
    """The validated config of a command that loads a model, with the libraries' noise turned down."""
    from lmforge.cli.quiet import quiet_libraries
    from lmforge.config import load_config

    cfg = load_config(config, [*(overrides or []), *extra])
    show_notices(cfg)
    quiet_libraries()
    return cfg
