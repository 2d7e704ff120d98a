"""A user's own template registrations: a Python file of `register_template(...)` calls (what `lmforge template
derive --out FILE` writes), named by the `template_file` config key and loaded before the template is looked up,
so a derived or hand-written template needs no edit of the installed package."""

import sys
import traceback
from pathlib import Path

from lmforge.data.templates.registry import TEMPLATES, register_template
from lmforge.data.templates.template import Message
from lmforge.errors import TemplateError

_LOADED: dict[Path, float] = {}  # file -> modification time it was loaded at (a run loads it more than once)
_SAMPLE = [Message("user", "Hi!"), Message("assistant", "Hello."), Message("user", "2+2?")]


def load_template_file(path: str | Path) -> list[str]:
    """Register the templates of `path` (once per version of the file); the names it registered."""
    file = Path(path).expanduser().resolve()
    if not file.is_file():
        raise TemplateError(f"`template_file: {path}`: no such file (write one with `lmforge template derive --out`)")
    if _LOADED.get(file) == file.stat().st_mtime:
        return []
    before = set(TEMPLATES.names())
    namespace = {"register_template": register_template, "__file__": str(file), "__name__": "lmforge_user_templates"}
    try:
        exec(compile(file.read_text(encoding="utf-8"), str(file), "exec"), namespace)  # the user's own code
    except TemplateError as err:
        raise TemplateError(f"{file}:{_line(file)}: {err}") from None
    except Exception as err:  # a slot of the wrong type, a syntax error, ...: say where
        raise TemplateError(f"{file}:{_line(file)}: {type(err).__name__}: {err} (each template is "
                            "`register_template(NAME, format_user=..., format_assistant=..., ...)`; "
                            "docs/templates.md lists the slots)") from None
    _LOADED[file] = file.stat().st_mtime
    added = sorted(set(TEMPLATES.names()) - before)
    for name in added:  # a slot that cannot render fails here, before any weight loads
        try:
            TEMPLATES.get(name).render_text(_SAMPLE, add_generation_prompt=True)
        except TemplateError as err:
            raise TemplateError(f"{file}: template `{name}` cannot render a conversation: {err}") from None
    return added


def _line(file: Path) -> int | str:
    frames = [frame for frame in traceback.extract_tb(sys.exc_info()[2]) if frame.filename == str(file)]
    return frames[-1].lineno if frames else "?"
