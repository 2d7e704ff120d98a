"""OLMo 3: pythonic calls, one `name(key=value, ...)` per line inside `<function_calls>`.

Values are written as OLMo 3's template writes them: strings in single quotes, `true` / `false` /
`null`, anything else as JSON. Unlike that template, a quote, backslash or line break inside a string
is escaped (Python's way), so every call parses back; the template writes them raw.
"""

import ast
import re
from typing import Any

from lmforge.data.templates.messages import ToolCall
from lmforge.data.templates.tool_formats import go_pieces as go
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat, Tools, dumps, function_of
from lmforge.data.templates.tool_formats.go_pieces import OllamaToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, append_tools, each_function, q, set_tools
from lmforge.errors import TemplateError

OLMO3_PREAMBLE = (
    "You have access to the following functions. To call functions, respond with a pythonic function call wrapped "
    "in <function_calls></function_calls> XML tags.\n\nFor example, to call a function named 'get_weather' with "
    "parameters city='New York' and units='celsius', respond with:\n<function_calls>\nget_weather(city='New York', "
    "units='celsius')\n</function_calls>\n\nYou can call multiple functions by putting each call on a new line "
    "within the tags:\n<function_calls>\nfunction1(param1='value1')\nfunction2(param2='value2')\n</function_calls>"
    "\n\nHere are the available functions:\n<functions>\n")


def _olmo3_tools(tools: Tools) -> str:
    return OLMO3_PREAMBLE + "\n".join(dumps(function_of(tool)) for tool in tools) + "\n</functions>"


def python_value(value: Any) -> str:
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        return f"'{escaped}'"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return dumps(value)


def _olmo3_calls(calls: tuple[ToolCall, ...]) -> str:
    lines = [f"{call.name}(" + ", ".join(f"{key}={python_value(value)}" for key, value in call.arguments.items()) + ")"
             for call in calls]
    return "<function_calls>\n" + "\n".join(lines) + "\n</function_calls>"


_NAMED = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def _literal(node: ast.expr, name: str) -> Any:
    """A call argument's value: a Python / JSON literal (`true`, `null` and `True`, `None` alike)."""
    if isinstance(node, ast.Constant) and (node.value is None or isinstance(node.value, str | int | float)):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMED:
        return _NAMED[node.id]
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant)
            and isinstance(node.operand.value, int | float) and not isinstance(node.operand.value, bool)):
        return -node.operand.value
    if isinstance(node, ast.List | ast.Tuple):
        return [_literal(item, name) for item in node.elts]
    if isinstance(node, ast.Dict) and all(key is not None for key in node.keys):
        return {_literal(key, name): _literal(value, name) for key, value in zip(node.keys, node.values, strict=True)}
    raise TemplateError(f"tool call `{name}`: an argument is not a literal value: {ast.unparse(node)[:100]}")


_BLOCK = re.compile(r"<function_calls>(.*?)(?:</function_calls>|\Z)", re.DOTALL)
# a call's name at the start of a line; tool names may hold `-` and `.`, which Python names cannot
_CALL_NAME = re.compile(r"^([ \t]*)([A-Za-z_][\w.-]*)\(", re.MULTILINE)


def _olmo3_parse(text: str) -> list[ToolCall]:
    match = _BLOCK.search(text)
    if not match:
        return []
    names: list[str] = []

    def placeholder(found: re.Match[str]) -> str:
        names.append(found.group(2))
        return f"{found.group(1)}_lmforge_call_{len(names) - 1}("

    body = match.group(1).strip()
    try:
        statements = ast.parse(_CALL_NAME.sub(placeholder, body)).body
    except SyntaxError as err:
        raise TemplateError(f"a <function_calls> block is not pythonic calls ({err.msg}): {body[:200]}") from None
    calls = []
    for statement in statements:
        call = statement.value if isinstance(statement, ast.Expr) else None
        if (not isinstance(call, ast.Call) or not isinstance(call.func, ast.Name)
                or not call.func.id.startswith("_lmforge_call_") or call.args
                or any(keyword.arg is None for keyword in call.keywords)):
            line = body.splitlines()[statement.lineno - 1]
            raise TemplateError(f"a <function_calls> block holds one `name(key=value, ...)` call per line, "
                                f"got {line!r}")
        name = names[int(call.func.id.removeprefix("_lmforge_call_"))]
        calls.append(ToolCall(name, {keyword.arg: _literal(keyword.value, name)
                                     for keyword in call.keywords if keyword.arg is not None}))
    return calls


# the pythonic call (_olmo3_calls): strings quoted and escaped, true/false/null, else JSON. The arguments must
# be an object here (a JSON string would need a parser jinja lacks).
_JINJA_CALL = (
    "{%- if call.arguments is string -%}{{- raise_exception('tool call ' + call.name + ': pythonic calls need the "
    "arguments as an object, not a JSON string') -}}{%- endif -%}"
    "{%- set ns.call = call.name + '(' -%}"
    "{%- for key, value in call.arguments.items() -%}"
    "{%- if value is string -%}{%- set shown = \"'\" + (value | replace('\\\\', '\\\\\\\\') "
    "| replace(\"'\", \"\\\\'\") | replace('\\n', '\\\\n') | replace('\\r', '\\\\r')) + \"'\" -%}"
    "{%- elif value is none -%}{%- set shown = 'null' -%}"
    "{%- elif value is sameas true -%}{%- set shown = 'true' -%}"
    "{%- elif value is sameas false -%}{%- set shown = 'false' -%}"
    "{%- else -%}{%- set shown = value | tojson -%}{%- endif -%}"
    "{%- set ns.call = ns.call + (', ' if not loop.first else '') + key + '=' + shown -%}"
    "{%- endfor -%}"
    "{%- set ns.call = ns.call + ')' -%}"
)

register_tool_format(ToolFormat(
    "olmo3", _olmo3_tools, _olmo3_calls, _olmo3_parse, call_marker="<function_calls>",
    call_words=("</function_calls>",),
    description="OLMo 3: pythonic `name(key='value')` calls, one a line, inside `<function_calls>`",
    jinja=JinjaToolFormat(
        set_tools(q(OLMO3_PREAMBLE)) + each_function("fn | tojson", "\n") + append_tools(q("\n</functions>")),
        _JINJA_CALL, "\n", "'<function_calls>\\n'", "'\\n</function_calls>'"),
    # Go: a string in single quotes, anything else as JSON (null, true, false included)
    ollama=OllamaToolFormat(
        go.go_text(OLMO3_PREAMBLE)
        + "{{ range $k, $t := $.Tools }}{{ if $k }}\n{{ end }}{{ json $t.Function }}{{ end }}\n</functions>",
        go.NAME + '({{ $sep := "" }}{{ range $key, $value := .Function.Arguments }}{{ $sep }}{{ $sep = ", " }}'
        "{{ $key }}=" + '{{ if eq (printf "%T" $value) "string" }}' + "'{{ $value }}'{{ else }}{{ json $value }}"
        "{{ end }}{{ end }})", "\n", "<function_calls>\n", "\n</function_calls>",
        limits="a string argument holding a quote, a backslash or a line break is written raw, as OLMo 3's own "
               "template writes it, where lmforge escapes it (Go's templates cannot replace text)")))
