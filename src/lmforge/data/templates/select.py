"""Which template a run uses: the configured one, else the builtin model's own."""

from lmforge.data.templates.registry import get_template
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.hub.builtin import get_builtin, is_builtin


def select_template(template: str | None, model_name_or_path: str | None) -> Template:
    if template:
        return get_template(template)
    if model_name_or_path and is_builtin(model_name_or_path):
        return get_template(get_builtin(model_name_or_path).template)
    raise TemplateError("set `template` to the model's chat template (e.g. chatml, qwen, llama3; "
                        "`lmforge template list` shows all)")
