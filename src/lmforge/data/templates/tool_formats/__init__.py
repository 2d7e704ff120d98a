"""Tool formats: how a family writes tool definitions and tool calls, and how calls are parsed back.

A format is one module here, all of it side by side: `render_tools` (the definitions, placed by the
template), `render_calls` (an assistant's calls, supervised like its answer), `parse_calls` (the model's
output back into `ToolCall`s, for chat and serving), the same rendering as jinja for the chat template of
saved tokenizers (`jinja`, see jinja_pieces.py) and as Ollama Go-template pieces for Modelfiles (`ollama`,
see go_pieces.py). `parse_calls(render_calls(calls)) == calls` holds for every format
(tests/data/test_templates_tools.py); the jinja and Go pieces are checked against the Python rendering
(tests/data/test_templates_jinja.py, tests/data/test_templates_ollama.py).

Each module registers its formats with `register_tool_format` at import; the registry imports every
module of this package on first lookup, so adding a format is one module (or one call in one).
"""

from collections.abc import Iterator

from lmforge.data.templates.tool_formats.base import ToolFormat, Tools
from lmforge.errors import TemplateError
from lmforge.registry import Registry

__all__ = ["TOOL_FORMATS", "ToolFormat", "Tools", "get_tool_format", "register_tool_format"]


class ToolFormatRegistry(Registry[ToolFormat]):
    """The tool-format registry; it also reads as a mapping of every name (aliases included) to its format."""

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> ToolFormat:
        return self.get(name)

    def values(self) -> list[ToolFormat]:
        return [fmt for _, fmt in self.items()]


TOOL_FORMATS = ToolFormatRegistry("tool_format", TemplateError, package=__name__)


def register_tool_format(fmt: ToolFormat, aliases: tuple[str, ...] = ()) -> ToolFormat:
    """Register `fmt` under its name and `aliases` (e.g. `hermes` for `qwen`); a name registered twice fails."""
    return TOOL_FORMATS.register(fmt.name, fmt, aliases)


def get_tool_format(name: str) -> ToolFormat:
    return TOOL_FORMATS.get(name)
