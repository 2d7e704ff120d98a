"""The template registry. Each family module in `families/` calls `register_template` at import; the
registry imports every module of `families/` on first lookup, so adding a family is adding one file."""

from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError
from lmforge.registry import Registry

TEMPLATES: Registry[Template] = Registry("template", TemplateError, package="lmforge.data.templates.families",
                                         listing="lmforge template list")


def register_template(name: str, **slots: object) -> Template:
    """Register a template under `name` (and its `aliases`); returns it. Re-registering a name fails."""
    template = Template(name=name, **slots)  # type: ignore[arg-type]
    return TEMPLATES.register(name, template, template.aliases)


def get_template(name: str) -> Template:
    return TEMPLATES.get(name)


def list_templates() -> list[Template]:
    return sorted(TEMPLATES.entries(), key=lambda t: t.name)
