"""Tool formats: how a family writes tool definitions and tool calls, and how calls are parsed back.

Each format renders both directions: `render_tools` (the definitions, placed by the template),
`render_calls` (an assistant's calls, supervised like its answer) and `parse_calls` (the model's
output back into `ToolCall`s, for chat and serving). `parse_calls(render_calls(calls)) == calls`
holds for every format (tests/data/test_templates_tools.py).

One module per family lists its formats in `FORMATS`; adding a format is adding it there (and its
jinja in jinja_tools.py, for saved tokenizers).
"""

from lmforge.data.templates.tool_formats import (
    cohere,
    deepseek,
    glm,
    gpt_oss,
    llama,
    mistral,
    olmo,
    qwen,
    react,
    vendors,
)
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools
from lmforge.errors import TemplateError

__all__ = ["TOOL_FORMATS", "ToolFormat", "Tools", "get_tool_format"]

FAMILIES = (react, qwen, llama, mistral, glm, cohere, vendors, deepseek, olmo, gpt_oss)
TOOL_FORMATS: dict[str, ToolFormat] = {fmt.name: fmt for module in FAMILIES for fmt in module.FORMATS}
TOOL_FORMATS["hermes"] = TOOL_FORMATS["qwen"]


def get_tool_format(name: str) -> ToolFormat:
    if name not in TOOL_FORMATS:
        raise TemplateError(f"unknown tool_format `{name}`; known: {', '.join(sorted(TOOL_FORMATS))}")
    return TOOL_FORMATS[name]
