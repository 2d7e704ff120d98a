"""`lmforge template ...`: list, show, check against a tokenizer, derive a registration, write a Modelfile."""

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from lmforge.cli.common import console, run_reporting_errors

app = typer.Typer(no_args_is_help=True, help="Chat templates: list, show, check, derive, modelfile.")

TokenizerOption = Annotated[str, typer.Option(
    "--tokenizer", help="A tokenizer folder, a model folder, `builtin:NAME`, or a .jinja chat template file.")]


def _tokenizer(reference: str) -> Any:
    """A tokenizer (with its chat template) from a folder or builtin name, or a bare .jinja file."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    from lmforge.errors import TemplateError
    from lmforge.hub.builtin import builtin_path, is_builtin

    path = Path(reference).expanduser()
    if path.suffix == ".jinja":
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=_empty_tokenizer())
        tokenizer.chat_template = path.read_text(encoding="utf-8")
        return tokenizer
    folder = builtin_path(reference) if is_builtin(reference) else path
    if not Path(folder).is_dir():
        raise TemplateError(f"--tokenizer {reference}: no such folder, builtin model or .jinja file")
    from lmforge.model.loading import TRANSFORMERS_FORMAT

    return AutoTokenizer.from_pretrained(folder, **TRANSFORMERS_FORMAT)


def _empty_tokenizer() -> Any:
    from tokenizers import Tokenizer, models

    return Tokenizer(models.WordLevel({"<unk>": 0}, unk_token="<unk>"))


@app.command("list")
def list_() -> None:
    """Every registered template: reference it is proven against, tool format, reasoning, description."""
    from lmforge.data.templates import list_templates

    table = Table(title="lmforge chat templates")
    for column in ("name", "reference", "tools", "thinking", "description"):
        table.add_column(column, overflow="fold")
    templates = list_templates()
    for template in templates:
        table.add_row(template.name, template.reference or "-", template.tool_format if template.can_render_tools
                      else "-", "yes" if template.thought_words else "-", template.description)
    console.print(table)
    console.print(f"{len(templates)} templates; `lmforge template show NAME` shows one")


@app.command()
def show(name: str) -> None:
    """A template's slots and a sample conversation rendered with it."""
    from lmforge.data.templates import Message, get_template

    def body() -> None:
        template = get_template(name)
        for field, value in vars(template).items():
            if field == "mm_plugin":
                continue
            # an empty header after tool results (DeepSeek's) is a setting; None is the default
            set_ = value is not None if field == "format_generation_after_tools" else value not in ("", (), None, False)
            if set_ or field in ("name", "format_user", "format_assistant"):
                console.print(f"[bold]{field}[/bold]: {escape(repr(value))}", highlight=False, soft_wrap=True)
        console.print(f"[bold]mm_plugin[/bold]: {_plugin_line(template.mm_plugin)}", highlight=False)
        sample = [Message("user", "Hi!"), Message("assistant", "Hello, how can I help?"), Message("user", "2+2?")]
        console.print("[bold]rendered[/bold] (question, answer, question, generation prompt):")
        console.print(template.render_text(sample, add_generation_prompt=True, bos_token="<bos>",
                                           eos_token="<eos>"), highlight=False, markup=False)

    run_reporting_errors(body)


def _plugin_line(name: str) -> str:
    """The multimodal plugin a template is made for, with what it serves."""
    from lmforge.data.multimodal.plugin import get_mm_plugin
    from lmforge.errors import DataError

    if name == "base":
        return "none (a text template)"
    try:
        plugin = get_mm_plugin(name)
    except DataError:
        return (f"{name} (served by the processor-native plugin: the model's processor expands its own media "
                "tokens; a processor that does not fails before the data)")
    return (f"{name} (processors: {', '.join(plugin.processor_classes)}; media: {', '.join(plugin.markers)}"
            f"{'' if plugin.supports_packing else '; no packing'})")


def check_cases(can_render_tools: bool) -> list[tuple[str, Any, Any, bool]]:
    from lmforge.data.templates.auto import PROBE, PROBE_TOOLS, PROBE_WITH_TOOLS

    cases = [("conversation", PROBE, None, False), ("generation prompt", PROBE[:4], None, True),
             ("no system", PROBE[1:], None, False)]
    if can_render_tools:
        cases.append(("tool call", PROBE_WITH_TOOLS, PROBE_TOOLS, False))
    return cases


@app.command()
def check(name: str, tokenizer: TokenizerOption,
          template_file: Annotated[str | None, typer.Option(
              help="A file of your own registrations (`derive --out`) to load first.")] = None) -> None:
    """Render conversations with the template and with the tokenizer's own chat template; print the diff."""
    from lmforge.data.templates import get_template
    from lmforge.data.templates.derive import compare_renderings
    from lmforge.data.templates.user_file import load_template_file
    from lmforge.errors import TemplateError

    def body() -> None:
        if template_file:
            load_template_file(template_file)
        template = get_template(name)
        loaded = _tokenizer(tokenizer)
        if not isinstance(loaded.chat_template, str):
            raise TemplateError(f"{tokenizer} has no chat template to check against")
        differ = 0
        for label, diff in compare_renderings(template, loaded.chat_template, loaded.bos_token or "",
                                              loaded.eos_token or "", check_cases(template.can_render_tools)):
            if diff is None:
                console.print(f"[green]{label}: equal[/green]")
            elif diff.startswith("not comparable"):
                console.print(f"{label}: {diff}", style="yellow", highlight=False, markup=False)
            else:
                differ += 1
                console.print(f"[red]{label}: different[/red]")
                console.print(diff, highlight=False, markup=False)
        if differ:
            raise typer.Exit(code=1)

    run_reporting_errors(body)


@app.command()
def derive(tokenizer: TokenizerOption,
           name: Annotated[str, typer.Option(help="Name of the derived template.")] = "my_model",
           out: Annotated[str | None, typer.Option(
               "--out", help="Append the registration to this file (then `template_file: FILE` in a config).")]
           = None) -> None:
    """A ready-to-use `register_template(...)` derived from a tokenizer's jinja chat template, with its verdict:
    text, trained answers (start, end, end-of-turn) and stop words, or the construct slots cannot hold."""
    from lmforge.data.templates.derive import derive_template
    from lmforge.errors import TemplateError

    def body() -> None:
        loaded = _tokenizer(tokenizer)
        if not isinstance(loaded.chat_template, str):
            raise TemplateError(f"{tokenizer} has no chat template to derive from")
        derived = derive_template(loaded.chat_template, name, loaded.bos_token or "", loaded.eos_token or "")
        if derived.not_expressible:
            console.print(f"not expressible as slots: {derived.not_expressible}", highlight=False, markup=False)
            raise typer.Exit(code=1)
        source = derived.registration()
        if out:
            path = Path(out).expanduser()
            existing = path.read_text(encoding="utf-8") if path.exists() else ""
            path.write_text(existing + ("\n" if existing else "") + source + "\n", encoding="utf-8")
            print(f"appended `{name}` to {path}: set `template_file: {path}` and `template: {name}`")
        else:
            print("from lmforge.data.templates.registry import register_template\n")
            print(source)
        if derived.mismatches:
            console.print(f"# not reproduced exactly: {'; '.join(derived.mismatches)} (edit the slots, then "
                          "`lmforge template check`)", highlight=False, markup=False, style="yellow")
        else:
            console.print("# reproduces the jinja template: its text, the answers it trains (start, end and "
                          "end-of-turn) and its stop words, on single-turn, multi-turn and system conversations",
                          style="green", highlight=False)

    run_reporting_errors(body)


@app.command()
def modelfile(name: str,
              tokenizer: Annotated[str | None, typer.Option(
                  "--tokenizer", help="Tokenizer whose bos/eos the template writes.")] = None,
              num_ctx: Annotated[int, typer.Option(help="Context length for Ollama.")] = 4096) -> None:
    """Print an Ollama Modelfile (TEMPLATE with tool calls, SYSTEM, stop words) for a registered template."""
    from lmforge.data.templates import get_template
    from lmforge.data.templates.modelfile import template_to_modelfile

    def body() -> None:
        loaded = _tokenizer(tokenizer) if tokenizer else None
        print(template_to_modelfile(get_template(name), parameters={"num_ctx": num_ctx},
                                    bos_token=loaded.bos_token if loaded else None,
                                    eos_token=loaded.eos_token if loaded else None), end="")

    run_reporting_errors(body)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="template")
