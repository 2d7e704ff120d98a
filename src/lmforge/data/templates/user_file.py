"""A user's own template registrations: a Python file of `register_template(...)` calls (what `lmforge template
derive --out FILE` writes), named by the `template_file` config key and loaded before the template is looked up,
so a derived or hand-written template needs no edit of the installed package."""

import sys
import traceback
from pathlib import Path

from lmforge.data.templates.registry import TEMPLATES, register_template
from lmforge.data.templates.template import Message, Template
from lmforge.errors import TemplateError

# file -> (modification time it was loaded at, the names it registered): a run loads it more than once
_LOADED: dict[Path, tuple[float, list[str]]] = {}
_SAMPLE = [Message("user", "Hi!"), Message("assistant", "Hello."), Message("user", "2+2?")]


def load_template_file(path: str | Path) -> list[str]:
    """Register the templates of `path` (once per version of the file); the names it registered."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise TemplateError(f"`template_file: {path}`: no such file (write one with `lmforge template derive --out`)")
    loaded_at, names = _LOADED.pop(file, (None, []))
    if loaded_at == file.stat().st_mtime:
        _LOADED[file] = (loaded_at, names)
        return []
    for name in names:  # the file changed since: its new version replaces them
        TEMPLATES.unregister(name)
    before = set(TEMPLATES.names())
    namespace = {"register_template": register_template, "__file__": str(file), "__name__": "lmforge_user_templates"}
    try:
        exec(compile(file.read_text(encoding="utf-8"), str(file), "exec"), namespace)  # the user's own code
        added = sorted(set(TEMPLATES.names()) - before)
        for name in added:  # a slot that cannot render fails here, before any weight loads
            _renders(TEMPLATES.get(name), name)
    except Exception as err:
        for name in sorted(set(TEMPLATES.names()) - before):  # a fixed file loads again in the same process
            TEMPLATES.unregister(name)
        detail = str(err) if isinstance(err, TemplateError) else f"{type(err).__name__}: {err}"
        raise TemplateError(f"{file}{_line(file)}: {detail} (each template is `register_template(NAME, "
                            "format_user=..., format_assistant=..., ...)`; docs/templates.md lists the slots)"
                            ) from None
    _LOADED[file] = (file.stat().st_mtime, added)
    return added


def _renders(template: Template, name: str) -> None:
    try:
        template.render_text(_SAMPLE, add_generation_prompt=True)
    except Exception as err:
        raise TemplateError(f"template `{name}` cannot render a conversation: {type(err).__name__}: {err}") from None


def _line(file: Path) -> str:
    """`:LINE` of the file's line the exception being handled came from ("" when it did not come from one)."""
    frames = [frame for frame in traceback.extract_tb(sys.exc_info()[2]) if frame.filename == str(file)]
    return f":{frames[-1].lineno}" if frames else ""
