"""The template registry. Each family module in `families/` calls `register_template` at import."""

import difflib
import importlib
import pkgutil

from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError

_TEMPLATES: dict[str, Template] = {}
_loaded = False


def register_template(name: str, **slots: object) -> Template:
    """Register a template under `name` (and its `aliases`); returns it. Re-registering a name fails."""
    template = Template(name=name, **slots)  # type: ignore[arg-type]
    for key in (name, *template.aliases):
        if key in _TEMPLATES:
            raise TemplateError(f"template `{key}` is registered twice")
        _TEMPLATES[key] = template
    return template


def _load_families() -> None:
    """Import every module of `families/`, so adding a family is adding one file."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from lmforge.data.templates import families

    for module in pkgutil.iter_modules(families.__path__):
        importlib.import_module(f"{families.__name__}.{module.name}")


def get_template(name: str) -> Template:
    _load_families()
    if name not in _TEMPLATES:
        close = difflib.get_close_matches(name, list(_TEMPLATES), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(f'`{c}`' for c in close)}?" if close else ""
        raise TemplateError(
            f"unknown template `{name}`{hint} (`lmforge template list` shows all {len(set(_TEMPLATES))})")
    return _TEMPLATES[name]


def list_templates() -> list[Template]:
    _load_families()
    unique = {id(t): t for t in _TEMPLATES.values()}
    return sorted(unique.values(), key=lambda t: t.name)
