"""`lmforge` commands. Heavy imports happen inside commands, so `--help` and `check` stay fast."""

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lmforge.cli.convert import convert as convert_command
from lmforge.cli.quiet import quiet_libraries
from lmforge.cli.serve import register as register_serving
from lmforge.errors import LmforgeError

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# peft still calls this deprecated transformers property on every model; it is not the user's concern
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fine-tune, chat with and export language models from one YAML file.")
console = Console()
err_console = Console(stderr=True)
_state = {"debug": False}

ConfigArg = Annotated[Path, typer.Argument(help="YAML config file (LLaMA-Factory keys work as they are).")]
OverridesArg = Annotated[list[str] | None, typer.Argument(help="key=value overrides, applied on top.")]


def _run(action: Callable[[], Any]) -> Any:
    """Run a command body; our errors become one readable message (traceback with --debug)."""
    try:
        return action()
    except LmforgeError as err:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/bold red] {err}", highlight=False)
        raise typer.Exit(code=1) from None


def _guarded(command: Callable[..., Any]) -> Callable[..., Any]:
    """A command defined in its own module, run through `_run` (same errors, same --debug)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _run(lambda: command(*args, **kwargs))

    return wrapper


app.command(name="convert")(_guarded(convert_command))


@app.callback()
def _options(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def check(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Validate a config (keys, types, rules, datasets, template) and print it resolved."""
    import yaml

    from lmforge.config import load_config
    from lmforge.preflight import preflight

    def body() -> None:
        cfg = load_config(config, overrides)
        preflight(cfg, "check")
        console.print(f"[green]{config}: valid[/green]")
        for group in ("model", "data", "finetuning", "generation", "training", "export"):
            values = getattr(cfg, group).model_dump(mode="json", exclude_none=True,
                                                    exclude_unset=group == "training")
            if group == "training":
                values = cfg.training.trainer_kwargs()
            console.print(f"[bold]{group}[/bold]")
            console.print(yaml.safe_dump(values, sort_keys=False, allow_unicode=True).rstrip(), highlight=False)

    _run(body)


@app.command()
def train(
    config: ConfigArg,
    overrides: OverridesArg = None,
    nproc: Annotated[int | None, typer.Option(help="Processes on this node (launches torchrun).")] = None,
) -> None:
    """Train as the config says (stage, method, data) and save model, logs, plot and summary.

    Several processes or nodes: --nproc N, or NPROC_PER_NODE / NNODES / NODE_RANK / MASTER_ADDR /
    MASTER_PORT as with LLaMA-Factory; lmforge then re-launches itself under torchrun."""
    from lmforge.config import load_config
    from lmforge.train.launch import is_main_worker, is_worker, launch_plan, relaunch

    def body() -> None:
        cfg = load_config(config, overrides)  # validate once, before any worker starts
        plan = launch_plan(nproc)
        if plan.distributed and not is_worker():
            raise typer.Exit(code=relaunch(plan, ["train", str(config), *(overrides or [])]))
        quiet_libraries()
        from lmforge.train.runner import run_training

        run_training(cfg, console if is_main_worker() else Console(quiet=True))

    _run(body)


@app.command()
def export(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Merge adapters into the base model, save sharded safetensors, and verify the logits."""
    from lmforge.config import load_config

    def body() -> None:
        cfg = load_config(config, overrides)
        quiet_libraries()
        from lmforge.export.merge import run_export

        result = run_export(cfg, console)
        console.print(f"exported to {result.export_dir}: {', '.join(result.files)}")

    _run(body)


@app.command()
def env() -> None:
    """Versions of Python and the libraries lmforge runs on, and the devices seen."""
    from lmforge.cli.env import environment_table

    console.print(environment_table())


def _register_groups() -> None:
    from lmforge.cli import data

    data.register(app, _run, console)
    register_serving(app, _run, quiet_libraries, console)
    from lmforge.cli.template import app as template_app

    app.add_typer(template_app, name="template")
    from lmforge.cli import models

    app.add_typer(models.app, name="models")


_register_groups()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
