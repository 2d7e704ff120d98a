"""Which template a run uses: the configured one, else the builtin model's own."""

from lmforge.data.templates.registry import get_template
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.hub.builtin import get_builtin, is_builtin


def select_template(template: str | None, model_name_or_path: str | None, tool_format: str | None = None) -> Template:
    """The registered template to use; `auto` (or none for a non-builtin model) is resolved once the
    tokenizer is loaded, by `lmforge.data.templates.auto.resolve_template`."""
    if template and template != "auto":
        return get_template(template).with_tool_format(tool_format)
    if not template and model_name_or_path and is_builtin(model_name_or_path):
        return get_template(get_builtin(model_name_or_path).template).with_tool_format(tool_format)
    raise TemplateError("set `template` to the model's chat template (e.g. chatml, qwen, llama3; "
                        "`lmforge template list` shows all)")
