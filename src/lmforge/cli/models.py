"""`lmforge models list` and `lmforge models info NAME`: the model registry."""

from typing import Annotated

import typer
from rich.table import Table

from lmforge.cli.common import console, run_reporting_errors

app = typer.Typer(no_args_is_help=True, help="Registered models: names, sources, templates.")




@app.command("list")
def list_(group: Annotated[str | None, typer.Option(help="Only this group (e.g. Qwen2.5).")] = None) -> None:
    """Every registered model with its group, template, modality and sources."""
    from lmforge.data.templates.select import default_template_name
    from lmforge.hub.registry import list_models

    table = Table("name", "group", "template", "modality", "sources (`models info NAME` shows them)")
    for model in list_models():
        if group and model.group.lower() != group.lower():
            continue
        table.add_row(model.name, model.group, default_template_name(model.name) or "-",
                      "multimodal" if model.multimodal else "text", ", ".join(model.sources))
    console.print(table)


@app.command()
def info(name: Annotated[str, typer.Argument(help="A registered display name or one of its source ids.")]) -> None:
    """Where a registered model loads from, its template, and (when available locally) its architecture."""
    from lmforge.data.templates.registry import get_template
    from lmforge.data.templates.select import default_template_name
    from lmforge.errors import TemplateError
    from lmforge.hub.registry import get_model

    def body() -> None:
        model = get_model(name)
        template = default_template_name(model.name)
        note = ""
        if template is not None:
            try:
                get_template(template)
            except TemplateError:
                note = " (not in this lmforge yet: set `template:` yourself)"
        console.print(f"[bold]{model.name}[/bold] ({model.group})")
        if model.description:
            console.print(f"  {model.description}")
        console.print(f"  template: {template or '-'}{note}")
        console.print(f"  modality: {'multimodal' if model.multimodal else 'text'}")
        for source, where in model.sources.items():
            console.print(f"  {source}: {where}")
        console.print(f"  use: model_name_or_path: {model.name}")

    run_reporting_errors(body)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
