"""Which template a run uses: the configured one, else the registered or builtin model's own."""

from lmforge.data.templates.registry import get_template
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.hub.builtin import get_builtin, is_builtin
from lmforge.hub.registry import find_model


def default_template_name(model_name_or_path: str | None) -> str | None:
    """The template the model registry or the builtin model supplies for `model_name_or_path`."""
    registered = find_model(model_name_or_path)
    if registered is not None and registered.template:
        return registered.template
    if registered is not None and "builtin" in registered.sources:
        return get_builtin(registered.sources["builtin"]).template
    if model_name_or_path and is_builtin(model_name_or_path):
        return get_builtin(model_name_or_path).template
    return None


def select_template(template: str | None, model_name_or_path: str | None) -> Template:
    if template:
        return get_template(template)
    default = default_template_name(model_name_or_path)
    if default:
        try:
            return get_template(default)
        except TemplateError:
            raise TemplateError(f"the model registry's template for `{model_name_or_path}` is `{default}`, which "
                                "this lmforge does not have yet: set `template:` (`lmforge template list`)") from None
    raise TemplateError("set `template` to the model's chat template (e.g. chatml, qwen, llama3; "
                        "`lmforge template list` shows all)")
