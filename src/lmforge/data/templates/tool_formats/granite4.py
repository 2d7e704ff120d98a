"""Granite 4: Qwen's `<tool_call>` JSON blocks, the definitions in Granite 4's own words."""

from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, q, set_tools
from lmforge.data.templates.tool_formats.qwen import _QWEN_GO, _QWEN_JINJA_CALL, _qwen_calls, _qwen_parse

_HEAD = ("You are a helpful assistant with access to the following tools. You may call one or more tools to assist "
         "with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>")
_TAIL = ('\n</tools>\n\nFor each tool call, return a json object with function name and arguments within '
         '<tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}'
         "\n</tool_call>. If a tool does not exist in the provided list of tools, notify the user that you do not "
         "have the ability to fulfill the request.")


def _granite4_tools(tools: Tools) -> str:
    return _HEAD + "".join("\n" + dumps(tool) for tool in tools) + _TAIL


register_tool_format(ToolFormat(
    "granite4", _granite4_tools, _qwen_calls, _qwen_parse, call_marker="<tool_call>", call_words=("</tool_call>",),
    description="Granite 4: `<tool_call>` JSON blocks (as Qwen's), definitions in `<tools>`",
    jinja=JinjaToolFormat(set_tools(q(_HEAD)) + "{%- for tool in ns.tool_list -%}"
                          + append_tools("'\\n' + tool | tojson") + "{%- endfor -%}" + append_tools(q(_TAIL)),
                          _QWEN_JINJA_CALL, "\n"),
    ollama=OllamaToolFormat(go.go_text(_HEAD) + go.EACH_TOOL_ON_A_LINE + go.go_text(_TAIL), _QWEN_GO.call, "\n")))
