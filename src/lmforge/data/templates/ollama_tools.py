"""A tool format's Ollama Go-template pieces, as modelfile.py asks for them.

Each format carries its own pieces (`ToolFormat.ollama`, written beside its Python rendering in
tool_formats/, with the Go helpers of tool_formats/go_pieces.py). `OLLAMA_TOOL_FORMATS` indexes them by
format name (aliases included) for the formats that have them, as registered when this module is first
imported (every builtin format); a format without them gets a Modelfile that says so.
tests/data/test_templates_ollama.py evaluates the Modelfiles on conversations with tools, calls and
results and compares them with lmforge's own rendering.
"""

from lmforge.data.templates.tool_formats import TOOL_FORMATS
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat, go_text

__all__ = ["JSON_LIMITS", "OLLAMA_TOOL_FORMATS", "OllamaToolFormat", "go_text"]

OLLAMA_TOOL_FORMATS: dict[str, OllamaToolFormat] = {
    name: fmt.ollama for name, fmt in TOOL_FORMATS.items() if fmt.ollama is not None}

# What every format's Modelfile shares: Ollama hands the template tools and arguments it has parsed itself
JSON_LIMITS = ("Ollama re-serialises tool definitions and call arguments: their JSON is compact (no spaces), "
               "argument keys and a tool's parameters come in alphabetical order, and `<`, `>`, `&` are written "
               "as \\u003c, \\u003e, \\u0026")
