"""`lmforge data preview|stats`: what a config would train on, without loading the model."""

from pathlib import Path
from typing import Annotated, Any

import typer

from lmforge.cli.common import console, run_reporting_errors, show_notices

data_app = typer.Typer(no_args_is_help=True, help="Inspect the data a config trains on.")
ConfigArg = Annotated[Path, typer.Argument(help="YAML config file.")]
OverridesArg = Annotated[list[str] | None, typer.Argument(help="key=value overrides.")]


def _prepare(config: Path, overrides: list[str] | None) -> tuple[Any, Any, Any, Any]:
    """(config, template, tokenizer, prepared data), read as `lmforge train` reads them."""
    from lmforge.cli.quiet import quiet_libraries
    from lmforge.config import load_config

    cfg = load_config(config, overrides)  # before the heavy imports below, so a config error comes at once
    show_notices(cfg)
    quiet_libraries()
    from lmforge.preflight import preflight
    from lmforge.train.prepare import prepare_data
    from lmforge.train.stages import STAGES

    kind = preflight(cfg, "check")
    _, tokenizer, template, prepared = prepare_data(cfg, STAGES.get(cfg.finetuning.stage).data, kind, console)
    return cfg, template, tokenizer, prepared


def register(root: typer.Typer) -> None:
    @data_app.command()
    def preview(config: ConfigArg, overrides: OverridesArg = None,
                examples: Annotated[int, typer.Option(help="How many examples to show.")] = 2) -> None:
        """Print the data report and the first examples with supervised tokens highlighted."""
        def body() -> None:
            _, template, tokenizer, prepared = _prepare(config, overrides)
            from lmforge.data.preview import print_data_report  # after the config: it brings datasets

            print_data_report(console, prepared, tokenizer, template.name, examples=examples)

        run_reporting_errors(body)

    @data_app.command()
    def stats(config: ConfigArg, overrides: OverridesArg = None,
              out: Annotated[Path | None, typer.Option(help="Histogram PNG path.")] = None) -> None:
        """The data report with length figures, plus a histogram PNG of lengths before truncation with
        cutoff_len marked (default: output_dir/data_lengths.png)."""
        from lmforge.errors import ConfigError

        def body() -> None:
            cfg, template, tokenizer, prepared = _prepare(config, overrides)
            from lmforge.data.preview import plot_lengths, print_data_report  # after the config: it brings datasets

            print_data_report(console, prepared, tokenizer, template.name, examples=0)
            if cfg.data.streaming:
                raise ConfigError("`lmforge data stats` needs the whole dataset: set `streaming: false`")
            if prepared.collator is not None:
                raise ConfigError("`lmforge data stats` plots token lengths, which multimodal rows have only once "
                                  "their media is processed per batch; the report above counts their text tokens")
            path = out or Path(cfg.training.output_dir or ".") / "data_lengths.png"
            plotted = plot_lengths(prepared.train, prepared.report.lengths, cfg.data.cutoff_len, path)
            console.print(f"length histogram (before truncation, cutoff_len marked): {plotted}")

        run_reporting_errors(body)

    root.add_typer(data_app, name="data")
