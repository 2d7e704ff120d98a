"""Which template a run uses: the configured one, else the registered or builtin model's own, else `auto`."""

from typing import TYPE_CHECKING, Any

from lmforge.data.templates.registry import get_template
from lmforge.data.templates.template import Template
from lmforge.data.templates.user_file import load_template_file
from lmforge.errors import TemplateError
from lmforge.hub.builtin import get_builtin, is_builtin
from lmforge.hub.registry import find_model

if TYPE_CHECKING:
    from lmforge.config.groups import ModelGroup


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


def select_template(template: str | None, model_name_or_path: str | None,
                    tool_format: str | None = None, template_file: str | None = None) -> Template | None:
    """The registered template to use, or None for `auto` (also the default for a model the registry does
    not know): the tokenizer's own chat template, resolved once it is loaded (`lmforge.data.templates.auto`).
    `template_file`: the user's own registrations, loaded first."""
    if template_file:
        load_template_file(template_file)
    if template and template != "auto":
        return get_template(template).with_tool_format(tool_format)
    default = default_template_name(model_name_or_path) if not template else None
    if default:
        try:
            return get_template(default).with_tool_format(tool_format)
        except TemplateError:
            raise TemplateError(f"the model registry's template for `{model_name_or_path}` is `{default}`, which "
                                "this lmforge does not have yet: set `template:` (`lmforge template list`)") from None
    if tool_format:
        raise TemplateError(f"`tool_format: {tool_format}` applies to registered templates; with `template: auto` "
                            "the tokenizer's own chat template writes tool calls: set `template` to a registered "
                            "name to choose a tool format")
    return None


def run_template(model: "ModelGroup", tokenizer: Any, *, preserve_thinking: bool = False) -> Template:
    """The template a run uses once its tokenizer is loaded (`template: auto` resolved against it);
    `preserve_thinking` keeps earlier turns' reasoning in the history."""
    from lmforge.data.templates.auto import resolve_template

    template = resolve_template(
        select_template(model.template, model.model_name_or_path, model.tool_format, model.template_file), tokenizer)
    return template.preserving_thinking() if preserve_thinking else template
