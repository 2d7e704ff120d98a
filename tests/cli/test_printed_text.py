"""Text from templates, data, errors and paths is printed as it is: rich reads `[...]` as markup, so a closing tag
such as Mistral's `[/INST]` raised (`lmforge template show mistral` ended in a traceback) and `[exp1]` vanished
from a path."""

import io

import pytest
from rich.console import Console
from typer.testing import CliRunner

from lmforge.cli.template import app as template_app
from lmforge.data.templates import get_template
from lmforge.data.templates.registry import list_templates
from lmforge.train.prepare import cross_check_template


@pytest.mark.parametrize("name", sorted(template.name for template in list_templates()))
def test_template_show_prints_every_template_with_its_slots_as_written(name):
    result = CliRunner().invoke(template_app, ["show", name])
    assert result.exit_code == 0, result.output
    template = get_template(name)
    assert repr(template.format_user) in result.output and "[bold]" not in result.output


def test_the_template_cross_check_warning_is_styled_and_keeps_the_templates_brackets(tiny_tokenizer):
    out = io.StringIO()
    cross_check_template(get_template("mistral"), tiny_tokenizer, strict=False,
                         console=Console(file=out, width=200, force_terminal=False))
    printed = out.getvalue()
    assert printed.startswith("warning: template `mistral`") and "[yellow]" not in printed
    assert "[INST]" in printed and "[/INST]" in printed
