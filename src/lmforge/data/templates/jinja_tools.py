"""Every tool format written as jinja, for the chat template of saved tokenizers (jinja.py).

For each format in tool_formats/: statements that set `ns.tools` to the rendered definitions (from
`ns.tool_list`, the tools in OpenAI's `{"type": "function", "function": ...}` shape), and how one
call is written (`ns.call`, from `call` = the function, `args` = its arguments as JSON, `call_id` = its
id), joined between a prefix and a suffix. tests/data/test_templates_jinja.py proves that each renders
what the Python format renders, through a reloaded tokenizer's `apply_chat_template`.
"""

from dataclasses import dataclass

from lmforge.data.templates import harmony
from lmforge.data.templates.tool_formats import deepseek
from lmforge.data.templates.tool_formats.olmo import OLMO3_PREAMBLE
from lmforge.errors import TemplateError


def _q(text: str) -> str:
    """A jinja string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _each_function(body: str, separator: str = "") -> str:
    """Append `body` (an expression of `fn`, the function) to ns.tools for every tool, joined by `separator`."""
    sep = f"({_q(separator)} if not loop.first else '') + " if separator else ""
    return ("{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}"
            f"{{%- set ns.tools = ns.tools + {sep}{body} -%}}{{%- endfor -%}}")


def _set(expression: str) -> str:
    return f"{{%- set ns.tools = {expression} -%}}"


def _append(expression: str) -> str:
    return f"{{%- set ns.tools = ns.tools + {expression} -%}}"


_DESCRIPTION = "(fn.description if fn.description is defined and fn.description is not none else '')"
_PROPERTIES = ("(fn.parameters.properties if fn.parameters is defined and fn.parameters.properties is defined "
               "else {})")

# Hermes' Python-style type names (tool_formats/qwen.py, _python_type), as a jinja macro
_PYTHON_TYPE_MACRO = (
    "{%- macro lmforge_pytype(spec) -%}"
    "{%- set kind = spec.type if spec is mapping and spec.type is defined else none -%}"
    "{%- set basic = {'string': 'str', 'number': 'float', 'integer': 'int', 'boolean': 'bool'} -%}"
    "{%- if kind is string and kind in basic -%}{{- basic[kind] -}}"
    "{%- elif kind == 'array' -%}{{- 'list[Union[]]' -}}"
    "{%- elif kind == 'object' -%}{%- if spec.additionalProperties is defined -%}"
    "{{- 'dict[str, ' + lmforge_pytype(spec.additionalProperties) + ']' -}}{%- else -%}{{- 'dict' -}}{%- endif -%}"
    "{%- elif kind is iterable and kind is not string and kind is not none -%}{{- 'Union[' -}}"
    "{%- for item in kind -%}{{- lmforge_pytype({'type': item}) -}}{{- ',' if not loop.last else '' -}}"
    "{%- endfor -%}{{- ']' -}}"
    "{%- else -%}{{- 'Union[]' -}}{%- endif -%}"
    "{%- endmacro -%}"
)

_REACT = "".join([
    _set(_q("You can use these tools:")),
    "{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}",
    _append(f"{_q(chr(10) + '> Tool Name: ')} + fn.name + {_q(chr(10) + 'Tool Description: ')} + {_DESCRIPTION}"),
    f"{{%- set props = {_PROPERTIES} -%}}",
    "{%- set required = fn.parameters.required if fn.parameters is defined and fn.parameters.required is defined "
    "else [] -%}",
    "{%- if props -%}" + _append(_q("\nTool Args:")) + "{%- endif -%}",
    "{%- for arg, spec in props.items() -%}",
    _append("'\\n  - ' + arg + ' (' + (spec.type if spec.type is defined else 'any') + "
            "(', required' if arg in required else '') + '): ' + (spec.description if spec.description is defined "
            "else '')"),
    "{%- endfor -%}",
    _append("'\\n'"),
    "{%- endfor -%}",
    _append(_q("\nTo use a tool, answer in this format:\n```\nAction: the tool name, one of [")
            + " + (ns.tool_list | map(attribute='function') | map(attribute='name') | join(', ')) + "
            + _q("]\nAction Input: the tool's arguments as one JSON object\n```\n")),
])
_QWEN = "".join([
    _set(_q("# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
            "with function signatures within <tools></tools> XML tags:\n<tools>")),
    "{%- for tool in ns.tool_list -%}" + _append("'\\n' + tool | tojson") + "{%- endfor -%}",
    _append(_q('\n</tools>\n\nFor each function call, return a json object with function name and arguments '
               'within <tool_call></tool_call> XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": '
               '<args-json-object>}\n</tool_call>')),
])
_HERMES3 = "".join([
    _set("''"),
    "{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}",
    f"{{%- set props = {_PROPERTIES} -%}}",
    "{%- set sig = namespace(text='', args='') -%}",
    "{%- for name, spec in props.items() -%}"
    "{%- set sig.text = sig.text + (', ' if not loop.first else '') + name + ': ' + lmforge_pytype(spec) -%}"
    "{%- set sig.args = sig.args + '        ' + name + '(' + lmforge_pytype(spec) + '): ' + "
    "((spec.description if spec.description is defined else '') | trim) -%}{%- endfor -%}",
    "{%- set doc = fn.name + '(' + sig.text + ')' + ((' -> ' + lmforge_pytype(fn['return'])) if fn['return'] is "
    "defined else '') + ' - ' + " + _DESCRIPTION + " + '\\n\\n' + (('    Args:\\n' + sig.args) if props else '') -%}",
    "{%- if fn['return'] is defined and fn['return'] is mapping and fn['return'].description is defined -%}"
    "{%- set doc = doc + '\\n    Returns:\\n        ' + fn['return'].description -%}{%- endif -%}",
    _append("('\\n' if not loop.first else '') + '{\"type\": \"function\", \"function\": {\"name\": \"' + fn.name + "
            "'\", \"description\": \"' + doc + '\", \"parameters\": ' + ((fn.parameters | tojson) if props else '{}') "
            "+ '}'"),
    "{%- endfor -%}",
])
_LLAMA3 = "".join([
    _set(_q("Given the following functions, please respond with a JSON for a function call with its proper "
            "arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, "
            "\"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n")),
    "{%- for tool in ns.tool_list -%}" + _append("tool | tojson(indent=4) + '\\n\\n'") + "{%- endfor -%}",
])
_GLM4 = _set(_q("# 可用工具")) + _each_function(
    "'\\n\\n## ' + fn.name + '\\n\\n' + fn | tojson(indent=4) + "
    + _q("\n在调用上述函数时，请使用 Json 格式表示调用的参数。"))
_XML = "".join([
    _set(_q("# Tools\n\nYou have access to these functions:\n<tools>")),
    "{%- for tool in ns.tool_list -%}" + _append("'\\n' + tool | tojson") + "{%- endfor -%}",
    _append(_q("\n</tools>\n\nTo call a function, reply with:\n<tool_call>\n<function=NAME>\n<parameter=ARGUMENT>\n"
               "VALUE\n</parameter>\n</function>\n</tool_call>")),
])
_COMMAND_R7B = _set("''") + _each_function(
    "'    {\"name\": \"' + fn.name + '\", \"description\": \"' + " + _DESCRIPTION + " + '\", \"parameters\": ' + "
    "(fn.parameters if fn.parameters is defined else {}) | tojson + ', \"responses\": null}'", ",\n")
_NEMOTRON = "".join([
    _set(_q("You can use the following tools to assist the user if required:\n<AVAILABLE_TOOLS>[")),
    _each_function("fn | tojson", ", "),
    _append(_q(']</AVAILABLE_TOOLS>\n\nIf you decide to call any tool(s), use the following format:\n<TOOLCALL>['
               '{{"name": "tool_name1", "arguments": "tool_args1"}}, {{"name": "tool_name2", "arguments": '
               '"tool_args2"}}]</TOOLCALL>\n\nThe user will execute tool-calls and return responses from tool(s) in '
               'this format:\n<TOOL_RESPONSE>[{{"tool_response1"}}, {{"tool_response2"}}]</TOOL_RESPONSE>\n\nBased '
               "on the tool responses, you can call additional tools if needed, correct tool calls if any errors are "
               "found, or just respond to the user.")),
])



def _deepseek(footer: str) -> str:
    return _set(_q(deepseek.TOOLS_HEADER)) + _each_function(
        "'### ' + fn.name + '\\nDescription: ' + " + _DESCRIPTION + " + '\\n\\nParameters: ' + "
        "((fn.parameters if fn.parameters is defined else {}) | tojson)", "\n\n") + _append(_q(footer))


_OLMO3 = _set(_q(OLMO3_PREAMBLE)) + _each_function("fn | tojson", "\n") + _append(_q("\n</functions>"))

# one call: an expression of `call` (the function), `args` (JSON text) and `call_id`
_NAME_ARGS = "'{\"name\": \"' + call.name + '\", \"arguments\": ' + args"
_NAME_PARAMETERS = "'{\"name\": \"' + call.name + '\", \"parameters\": ' + args + '}'"
_WITH_ID = _NAME_ARGS + " + ((', \"id\": \"' + call_id + '\"') if call_id else '') + '}'"
_XML_CALL = (
    "{%- set ns.call = '<tool_call>\\n<function=' + call.name + '>\\n' -%}"
    "{%- for key, value in (call.arguments if call.arguments is mapping else {}).items() -%}"
    "{%- set ns.call = ns.call + '<parameter=' + key + '>\\n' + (value if value is string else value | tojson) "
    "+ '\\n</parameter>\\n' -%}{%- endfor -%}"
    "{%- set ns.call = ns.call + '</function>\\n</tool_call>' -%}"
)

# OLMo 3's pythonic call (tool_formats/olmo.py): strings quoted and escaped, true/false/null, else JSON. The
# arguments must be an object here (a JSON string would need a parser jinja lacks).
_PYTHONIC_CALL = (
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


@dataclass(frozen=True)
class JinjaToolFormat:
    definitions: str  # statements setting ns.tools from ns.tool_list
    call: str  # an expression for one call, or statements setting ns.call (when it starts with "{%")
    separator: str = ""  # between calls
    prefix: str = "''"  # expression before the calls (may use `count`, the number of calls)
    suffix: str = "''"  # expression after the calls
    answer: str = ""  # expression of `text` and `calls` for the whole answer; default: text, separator, calls
    macros: str = ""


JINJA_TOOL_FORMATS: dict[str, JinjaToolFormat] = {
    "default": JinjaToolFormat(_REACT, "'Action: ' + call.name + '\\nAction Input: ' + args", "\n"),
    "qwen": JinjaToolFormat(_QWEN, "'<tool_call>\\n' + " + _NAME_ARGS + " + '}\\n</tool_call>'", "\n"),
    "hermes3": JinjaToolFormat(_HERMES3, "'<tool_call>\\n' + " + _NAME_ARGS + " + '}\\n</tool_call>'", "\n",
                               macros=_PYTHON_TYPE_MACRO),
    "llama3": JinjaToolFormat(_LLAMA3, _NAME_PARAMETERS, ", ", "('[' if count > 1 else '')",
                              "(']' if count > 1 else '')"),
    "llama4": JinjaToolFormat(_LLAMA3, _NAME_PARAMETERS,
                              answer="'<|python_start|>' + text + '<|python_end|>' + calls"),
    "mistral": JinjaToolFormat(_set("'[AVAILABLE_TOOLS] ' + ns.tool_list | tojson + '[/AVAILABLE_TOOLS]'"), _WITH_ID,
                               ", ", "'[TOOL_CALLS] ['", "']'"),
    "mistral_v7": JinjaToolFormat(_set("'[AVAILABLE_TOOLS]' + ns.tool_list | tojson + '[/AVAILABLE_TOOLS]'"), _WITH_ID,
                                  ", ", "'[TOOL_CALLS]['", "']'"),
    "mistral_small": JinjaToolFormat(
        _set("'[AVAILABLE_TOOLS]' + ns.tool_list | tojson + '[/AVAILABLE_TOOLS]'"),
        "'[TOOL_CALLS]' + call.name + (('[CALL_ID]' + call_id) if call_id else '') + '[ARGS]' + args"),
    "glm4": JinjaToolFormat(_GLM4, "call.name + '\\n' + args", "\n"),
    "xml": JinjaToolFormat(_XML, _XML_CALL, "\n"),
    "granite": JinjaToolFormat(_set("ns.tool_list | tojson(indent=4)"), _NAME_ARGS + " + '}'", ", ",
                               "'<|tool_call|>['", "']'"),
    "command_r7b": JinjaToolFormat(
        _COMMAND_R7B, "'    {\"tool_call_id\": \"' + call_id + '\", \"tool_name\": \"' + call.name + "
        "'\", \"parameters\": ' + args + '}'", ",\n", "'<|START_ACTION|>[\\n'", "'\\n]<|END_ACTION|>'",
        answer="'<|START_THINKING|>' + text + '<|END_THINKING|>' + calls"),
    "internlm2": JinjaToolFormat(_set("'['") + _each_function("fn | tojson", ", ") + _append("']'"),
                                 "'<|action_start|><|plugin|>\\n' + " + _NAME_ARGS + " + '}<|action_end|>'"),
    "nemotron": JinjaToolFormat(_NEMOTRON, _NAME_ARGS + " + '}'", ", ", "'<TOOLCALL>['", "']</TOOLCALL>'"),
    "gpt_oss": JinjaToolFormat(harmony.JINJA_DEFINITIONS, harmony.JINJA_CALL, harmony.JINJA_SEPARATOR,
                               answer=harmony.JINJA_ANSWER, macros=harmony.JINJA_MACROS),
    "deepseek3": JinjaToolFormat(
        _deepseek(deepseek.V3_FOOTER),
        _q(deepseek.CALL_BEGIN + "function" + deepseek.SEP) + " + call.name + '\\n```json\\n' + args + "
        + _q("\n```" + deepseek.CALL_END), "\n", _q(deepseek.CALLS_BEGIN), _q(deepseek.CALLS_END)),
    "deepseek3.1": JinjaToolFormat(
        _deepseek(deepseek.V31_FOOTER),
        _q(deepseek.CALL_BEGIN) + " + call.name + " + _q(deepseek.SEP) + " + args + " + _q(deepseek.CALL_END),
        prefix=_q(deepseek.CALLS_BEGIN), suffix=_q(deepseek.CALLS_END)),
    "olmo3": JinjaToolFormat(_OLMO3, _PYTHONIC_CALL, "\n", "'<function_calls>\\n'", "'\\n</function_calls>'"),
}
JINJA_TOOL_FORMATS["hermes"] = JINJA_TOOL_FORMATS["qwen"]


def jinja_tool_format(name: str) -> JinjaToolFormat:
    if name not in JINJA_TOOL_FORMATS:  # a format added to tool_formats/ without its jinja
        raise TemplateError(f"tool_format `{name}` has no jinja rendering for saved tokenizers")
    return JINJA_TOOL_FORMATS[name]


def calls_statements(fmt: JinjaToolFormat, content_separator: str) -> str:
    """Statements that render `message.tool_calls` into `ns.calls` and combine them with `text`."""
    call = fmt.call if fmt.call.startswith("{%") else f"{{%- set ns.call = {fmt.call} -%}}"
    separator = f"({_q(fmt.separator)} if not loop.first else '') + " if fmt.separator else ""
    answer = fmt.answer or f"((text + {_q(content_separator)} + calls) if text else calls)"
    return (
        "{%- set count = message.tool_calls | length -%}{%- set ns.calls = '' -%}"
        "{%- for item in message.tool_calls -%}"
        "{%- set call = item.function if item.function is defined else item -%}"
        "{%- set args = call.arguments if call.arguments is string else call.arguments | tojson -%}"
        "{%- set call_id = (item.id | string) if item.id is defined and item.id is not none else '' -%}"
        + call
        + f"{{%- set ns.calls = ns.calls + {separator}ns.call -%}}"
        "{%- endfor -%}"
        f"{{%- set calls = {fmt.prefix} + ns.calls + {fmt.suffix} -%}}"
        f"{{%- set text = {answer} -%}}"
    )
