"""`lmforge export`."""

import typer

from lmforge.cli.common import ConfigArg, OverridesArg, console, load_command_config, run_reporting_errors


def export(config: ConfigArg, overrides: OverridesArg = None) -> None:
    """Merge adapters into the base model, save sharded safetensors, and verify the logits."""

    def body() -> None:
        cfg = load_command_config(config, overrides)
        from lmforge.export.pipeline import run_export

        result = run_export(cfg, console)
        console.print(f"exported to {result.export_dir}: {', '.join(result.files)}", markup=False)

    run_reporting_errors(body)


def register(app: typer.Typer) -> None:
    app.command()(export)
