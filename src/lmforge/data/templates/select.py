"""Which template a run uses: the configured one, else the builtin model's own, else `auto`."""

from typing import TYPE_CHECKING, Any

from lmforge.data.templates.registry import get_template
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.hub.builtin import get_builtin, is_builtin

if TYPE_CHECKING:
    from lmforge.config import LmforgeConfig


def select_template(template: str | None, model_name_or_path: str | None,
                    tool_format: str | None = None) -> Template | None:
    """The registered template to use, or None for `auto` (also the default for a non-builtin model): the
    tokenizer's own chat template, resolved once it is loaded (`lmforge.data.templates.auto`)."""
    if template and template != "auto":
        return get_template(template).with_tool_format(tool_format)
    if not template and model_name_or_path and is_builtin(model_name_or_path):
        return get_template(get_builtin(model_name_or_path).template).with_tool_format(tool_format)
    if tool_format:
        raise TemplateError(f"`tool_format: {tool_format}` applies to registered templates; with `template: auto` "
                            "the tokenizer's own chat template writes tool calls: set `template` to a registered "
                            "name to choose a tool format")
    return None


def run_template(cfg: "LmforgeConfig", tokenizer: Any) -> Template:
    """The template a run uses once its tokenizer is loaded (`template: auto` resolved against it)."""
    from lmforge.data.templates.auto import resolve_template

    return resolve_template(
        select_template(cfg.model.template, cfg.model.model_name_or_path, cfg.model.tool_format), tokenizer)
