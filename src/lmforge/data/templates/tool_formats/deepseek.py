"""DeepSeek V3 / R1 and V3.1: calls between `<｜tool▁calls▁begin｜>` and `<｜tool▁calls▁end｜>`.

V3 and R1 write each call as `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` and its arguments in a
```json fence, calls joined by newlines; V3.1 writes `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}` back to back.
Their chat templates write no tool definitions: V3.1's model card has them appended to the system
prompt as a `## Tools` section, which both formats write (V3's with its own call syntax).
"""

import re

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps, function_of, json_arguments
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import (
    DESCRIPTION,
    JinjaToolFormat,
    append_tools,
    each_function,
    q,
    set_tools,
)

CALLS_BEGIN, CALLS_END = "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"
CALL_BEGIN, CALL_END, SEP = "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>"
WORDS = (CALL_BEGIN, SEP, CALL_END, CALLS_END)


TOOLS_HEADER = "## Tools\nYou have access to the following tools:\n\n"


def tools_footer(call_syntax: str, chaining: str) -> str:
    """What follows the tools in the `## Tools` section: the call syntax and its rules."""
    return ("\n\nIMPORTANT: ALWAYS adhere to this exact format for tool use:\n" + call_syntax
            + "\n\nWhere:\n- `tool_call_name` must be an exact match to one of the available tools\n"
              "- `tool_call_arguments` must be valid JSON that strictly follows the tool's Parameters Schema\n"
              "- For multiple tool calls, " + chaining)


V3_FOOTER = tools_footer(f"{CALLS_BEGIN}{CALL_BEGIN}function{SEP}tool_call_name\n```json\ntool_call_arguments\n```"
                         f"{CALL_END}{{{{additional_tool_calls}}}}{CALLS_END}", "put each on a new line")
V31_FOOTER = tools_footer(f"{CALLS_BEGIN}{CALL_BEGIN}tool_call_name{SEP}tool_call_arguments{CALL_END}"
                          f"{{{{additional_tool_calls}}}}{CALLS_END}",
                          "chain them directly without separators or spaces")


def tools_section(tools: Tools, footer: str) -> str:
    """The `## Tools` section of DeepSeek V3.1's model card: a `###` part per tool, then `footer`."""
    sections = "\n\n".join(f"### {tool['name']}\nDescription: {tool.get('description') or ''}\n\n"
                           f"Parameters: {dumps(tool.get('parameters', {}))}" for tool in map(function_of, tools))
    return TOOLS_HEADER + sections + footer


def _v3_calls(calls: tuple[ToolCall, ...]) -> str:
    listed = "\n".join(f"{CALL_BEGIN}function{SEP}{call.name}\n```json\n{call.arguments_json()}\n```{CALL_END}"
                       for call in calls)
    return f"{CALLS_BEGIN}{listed}{CALLS_END}"


_V3_CALL = re.compile(re.escape(CALL_BEGIN) + r"[^\n]*?" + re.escape(SEP) + r"(.+?)\n```(?:json)?\n(.*?)\n?```",
                      re.DOTALL)


def _v3_parse(text: str) -> list[ToolCall]:
    return [ToolCall(name.strip(), json_arguments(arguments, name.strip()))
            for name, arguments in _V3_CALL.findall(text)]


def _v31_calls(calls: tuple[ToolCall, ...]) -> str:
    return CALLS_BEGIN + "".join(f"{CALL_BEGIN}{call.name}{SEP}{call.arguments_json()}{CALL_END}"
                                 for call in calls) + CALLS_END


_V31_CALL = re.compile(re.escape(CALL_BEGIN) + r"(.*?)" + re.escape(SEP) + r"(.*?)" + re.escape(CALL_END), re.DOTALL)


def _v31_parse(text: str) -> list[ToolCall]:
    return [ToolCall(name.strip(), json_arguments(arguments, name.strip()))
            for name, arguments in _V31_CALL.findall(text)]


def _jinja_tools(footer: str) -> str:
    return set_tools(q(TOOLS_HEADER)) + each_function(
        "'### ' + fn.name + '\\nDescription: ' + " + DESCRIPTION + " + '\\n\\nParameters: ' + "
        "((fn.parameters if fn.parameters is defined else {}) | tojson)", "\n\n") + append_tools(q(footer))


def _go_tools(footer: str) -> str:
    """The `## Tools` section in Go (a tool's parameters are Ollama's re-serialised JSON)."""
    return (go.go_text(TOOLS_HEADER) + "{{ range $k, $t := $.Tools }}{{ if $k }}\n\n{{ end }}### {{ $t.Function.Name }}"
            "\nDescription: {{ $t.Function.Description }}\n\nParameters: {{ json $t.Function.Parameters }}{{ end }}"
            + go.go_text(footer))


register_tool_format(ToolFormat(
    "deepseek3", lambda tools: tools_section(tools, V3_FOOTER), _v3_calls, _v3_parse,
    content_separator="", call_marker=CALLS_BEGIN, call_words=WORDS,
    description="DeepSeek V3 / R1: `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` and a ```json "
                "fence per call, inside `<｜tool▁calls▁begin｜>`",
    jinja=JinjaToolFormat(
        _jinja_tools(V3_FOOTER),
        q(CALL_BEGIN + "function" + SEP) + " + call.name + '\\n```json\\n' + args + " + q("\n```" + CALL_END), "\n",
        q(CALLS_BEGIN), q(CALLS_END)),
    ollama=OllamaToolFormat(_go_tools(V3_FOOTER), CALL_BEGIN + "function" + SEP + go.NAME + "\n```json\n" + go.ARGUMENTS
                            + "\n```" + CALL_END, "\n", CALLS_BEGIN, CALLS_END)))
register_tool_format(ToolFormat(
    "deepseek3.1", lambda tools: tools_section(tools, V31_FOOTER), _v31_calls, _v31_parse,
    content_separator="", call_marker=CALLS_BEGIN, call_words=WORDS,
    description="DeepSeek V3.1: `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>` per call",
    jinja=JinjaToolFormat(
        _jinja_tools(V31_FOOTER), q(CALL_BEGIN) + " + call.name + " + q(SEP) + " + args + " + q(CALL_END),
        prefix=q(CALLS_BEGIN), suffix=q(CALLS_END)),
    ollama=OllamaToolFormat(_go_tools(V31_FOOTER), CALL_BEGIN + go.NAME + SEP + go.ARGUMENTS + CALL_END,
                            prefix=CALLS_BEGIN, suffix=CALLS_END)))
