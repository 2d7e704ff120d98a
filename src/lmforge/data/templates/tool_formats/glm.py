"""GLM-4: the tool name on one line, its JSON arguments on the next."""

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps, function_of, loads
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, each_function, q, set_tools


def _glm4_tools(tools: Tools) -> str:
    parts = ["# 可用工具"]
    for tool in map(function_of, tools):
        parts.append(f"\n\n## {tool['name']}\n\n{dumps(tool, indent=4)}\n"
                     "在调用上述函数时，请使用 Json 格式表示调用的参数。")
    return "".join(parts)


def _glm4_calls(calls: tuple[ToolCall, ...]) -> str:
    return "\n".join(f"{call.name}\n{call.arguments_json()}" for call in calls)


def _glm4_parse(text: str) -> list[ToolCall]:
    calls, lines = [], text.strip().split("\n")
    for name, args in zip(lines[::2], lines[1::2], strict=False):
        if not args.lstrip().startswith("{"):
            return []
        calls.append(ToolCall(name.strip(), loads(args, f"arguments of `{name.strip()}`")))
    return calls


register_tool_format(ToolFormat(
    "glm4", _glm4_tools, _glm4_calls, _glm4_parse,
    description="GLM-4: the tool name on one line, its JSON arguments on the next",
    jinja=JinjaToolFormat(
        set_tools(q("# 可用工具")) + each_function("'\\n\\n## ' + fn.name + '\\n\\n' + fn | tojson(indent=4) + "
                                                  + q("\n在调用上述函数时，请使用 Json 格式表示调用的参数。")),
        "call.name + '\\n' + args", "\n"),
    ollama=OllamaToolFormat(
        "# 可用工具{{ range $.Tools }}\n\n## {{ .Function.Name }}\n\n{{ json .Function }}\n"
        "在调用上述函数时，请使用 Json 格式表示调用的参数。{{ end }}", go.NAME + "\n" + go.ARGUMENTS, "\n",
        limits=go.INDENTED)))
