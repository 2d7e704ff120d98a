"""GLM-4: the tool name on one line, its JSON arguments on the next."""

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps, function_of, loads


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


FORMATS = [
    ToolFormat("glm4", _glm4_tools, _glm4_calls, _glm4_parse,
               description="GLM-4: the tool name on one line, its JSON arguments on the next"),
]
