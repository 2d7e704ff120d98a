"""`lmforge` commands. Heavy imports happen inside commands, so `--help` and `check` stay fast."""

import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

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


def _quiet_libraries() -> None:
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_warning()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def _run(action: Callable[[], Any]) -> Any:
    """Run a command body; our errors become one readable message (traceback with --debug)."""
    try:
        return action()
    except LmforgeError as err:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/bold red] {err}", highlight=False)
        raise typer.Exit(code=1) from None


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
def train(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Train as the config says (stage, method, data) and save model, logs, plot and summary."""
    from lmforge.config import load_config

    def body() -> None:
        cfg = load_config(config, overrides)
        _quiet_libraries()
        from lmforge.train.sft import run_sft

        run_sft(cfg, console)

    _run(body)


@app.command()
def chat(
    config: ConfigArg,
    overrides: OverridesArg = None,
    prompt: Annotated[str | None, typer.Option(help="Answer this one prompt and exit.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
) -> None:
    """Chat with the model (base or base + adapters): interactive and streaming, or one --prompt."""
    from lmforge.config import load_config

    def body() -> None:
        cfg = load_config(config, overrides)
        _quiet_libraries()
        from lmforge.cli.repl import answer_once, repl
        from lmforge.infer.engine import ChatEngine

        engine = ChatEngine(cfg)
        if prompt is not None:
            answer_once(engine, prompt, system, console)
        else:
            repl(engine, system, console)

    _run(body)


@app.command()
def export(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Merge adapters into the base model, save sharded safetensors, and verify the logits."""
    from lmforge.config import load_config

    def body() -> None:
        cfg = load_config(config, overrides)
        _quiet_libraries()
        from lmforge.export.merge import run_export

        result = run_export(cfg, console)
        console.print(f"exported to {result.export_dir}: {', '.join(result.files)}")

    _run(body)


@app.command()
def env() -> None:
    """Versions of Python and the libraries lmforge runs on, and the devices seen."""
    from lmforge.cli.env import environment_table

    console.print(environment_table())


from lmforge.cli import models as _models  # noqa: E402  (the command group needs `app` and `_run` above)

app.add_typer(_models.app, name="models")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
