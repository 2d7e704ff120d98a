"""SmolLM3: Qwen's `<tool_call>` JSON blocks; the definitions (its "XML tools") as JSON lines in `<tools>`, and
`None` when there are none, since its system prompt always has a tools section."""

from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, q, set_tools
from lmforge.data.templates.tool_formats.qwen import _QWEN_GO, _QWEN_JINJA_CALL, _qwen_calls, _qwen_parse

_HEAD = ("You may call one or more functions to assist with the user query.\n\nYou are provided with function "
         "signatures within <tools></tools> XML tags:\n\n<tools>\n")
_TAIL = ("</tools>\n\nFor each function call, return a json object with function name and arguments within "
         "<tool_call></tool_call> XML tags.")
_NONE = "None"


def _tools(tools: Tools) -> str:
    return _HEAD + "".join(dumps(tool) + "\n" for tool in tools) + _TAIL if tools else _NONE


register_tool_format(ToolFormat(
    "smollm3", _tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>", call_words=("</tool_call>",),
    description="SmolLM3: `<tool_call>` JSON blocks (as Qwen's), definitions as JSON lines in `<tools>` (`None` "
                "without tools)",
    jinja=JinjaToolFormat("{%- if ns.tool_list -%}" + set_tools(q(_HEAD)) + "{%- for tool in ns.tool_list -%}"
                          + append_tools("tool | tojson + '\\n'") + "{%- endfor -%}" + append_tools(q(_TAIL))
                          + "{%- else -%}" + set_tools(q(_NONE)) + "{%- endif -%}", _QWEN_JINJA_CALL, "\n"),
    ollama=OllamaToolFormat("{{ if $.Tools }}" + go.go_text(_HEAD) + "{{ range $.Tools }}{{ json . }}\n{{ end }}"
                            + go.go_text(_TAIL) + "{{ else }}" + _NONE + "{{ end }}", _QWEN_GO.call, "\n")))
