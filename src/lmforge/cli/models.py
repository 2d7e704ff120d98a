"""`lmforge models list` and `lmforge models info NAME`: the model registry."""

from typing import Annotated

import typer
from rich.table import Table

from lmforge.cli.common import console, reporting_errors

app = typer.Typer(no_args_is_help=True, help="Registered models: names, hub ids, templates, modality.")


def _template_names(name: str) -> set[str]:
    """`name` and every name of the same registered template (its aliases), so `--template qwen2.5` finds `qwen`."""
    from lmforge.data.templates.registry import TEMPLATES

    if name not in TEMPLATES:
        return {name}  # a template the registry names but this lmforge does not have yet
    template = TEMPLATES.get(name)
    return {key for key, entry in TEMPLATES.items() if entry is template}


def _template_note(template: str | None) -> str:
    from lmforge.data.templates.registry import TEMPLATES

    if template is None:
        return "- (`template: auto`: the checkpoint's own chat template)"
    if template in TEMPLATES:
        return template
    return (f"{template} (not in this lmforge yet: set `template:` to a registered one, or `auto` for the "
            "checkpoint's own chat template)")


@app.command("list")
@reporting_errors
def list_(
    family: Annotated[str | None, typer.Option("--family", "--group",
                                               help="Only this family: a group (Qwen2.5) or the groups it heads "
                                                    "(Qwen3: Qwen3, Qwen3-VL, Qwen3-Omni).")] = None,
    multimodal: Annotated[bool | None, typer.Option("--multimodal/--text",
                                                    help="Only vision/audio-language models, or only text.")] = None,
    template: Annotated[str | None, typer.Option(help="Only models whose default template is this one.")] = None,
) -> None:
    """Registered models with their group, default template, modality and hub id."""
    from lmforge.hub.registry import filter_models

    models = filter_models(family, multimodal, _template_names(template) if template else None)
    table = Table("name", "group", "template", "modality", "hub id (`models info NAME`: all sources)")
    for model in models:
        hub_id = model.sources.get("hf") or model.sources.get("modelscope") or (
            "builtin:" + model.sources["builtin"] if "builtin" in model.sources else "-")
        table.add_row(model.name, model.group, model.template or "auto", model.modality, hub_id)
    console.print(table)
    groups = len({model.group for model in models})
    console.print(f"{len(models)} model(s) in {groups} group(s)" + ("" if models else
                  ": none match (`lmforge models list` without filters shows all)"))


@app.command()
@reporting_errors
def info(name: Annotated[str, typer.Argument(help="A registered display name or one of its hub ids.")]) -> None:
    """Where a registered model loads from, its default template, modality and family."""
    from lmforge.hub.registry import filter_models, get_model

    model = get_model(name)
    console.print(f"[bold]{model.name}[/bold] (group {model.group})")
    if model.description:
        console.print(f"  {model.description}")
    console.print(f"  template: {_template_note(model.template)}")
    console.print(f"  modality: {model.modality}")
    for source, where in model.sources.items():
        console.print(f"  {source}: {'builtin:' + where if source == 'builtin' else where}")
    siblings = [m.name for m in filter_models(model.group) if m.group == model.group and m is not model]
    if siblings:
        shown = ", ".join(siblings[:12]) + (f", ... ({len(siblings)} in all)" if len(siblings) > 12 else "")
        console.print(f"  same group: {shown}")
    also = "   (`model_hub: modelscope` loads the ModelScope id)" if "modelscope" in model.sources else ""
    console.print(f"  use: model_name_or_path: {model.name}{also}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="models")
