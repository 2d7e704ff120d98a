"""A tool format's jinja, for the chat template of saved tokenizers, and the helpers formats write it with.

A format's `JinjaToolFormat` holds statements that set `ns.tools` to the rendered definitions (from
`ns.tool_list`, the tools in OpenAI's `{"type": "function", "function": ...}` shape) and how one call is
written (`ns.call`, from `call` = the function, `args` = its arguments as JSON, `call_id` = its id),
joined between a prefix and a suffix; jinja_tools.py assembles them into the saved template.
tests/data/test_templates_jinja.py proves that each renders what the Python format renders, through a
reloaded tokenizer's `apply_chat_template`.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class JinjaToolFormat:
    definitions: str  # statements setting ns.tools from ns.tool_list
    call: str  # an expression for one call, or statements setting ns.call (when it starts with "{%")
    separator: str = ""  # between calls
    prefix: str = "''"  # expression before the calls (may use `count`, the number of calls)
    suffix: str = "''"  # expression after the calls
    answer: str = ""  # expression of `text` and `calls` for the whole answer; default: text, separator, calls
    macros: str = ""


def q(text: str) -> str:
    """A jinja string literal."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def each_function(body: str, separator: str = "") -> str:
    """Append `body` (an expression of `fn`, the function) to ns.tools for every tool, joined by `separator`."""
    sep = f"({q(separator)} if not loop.first else '') + " if separator else ""
    return ("{%- for tool in ns.tool_list -%}{%- set fn = tool.function -%}"
            f"{{%- set ns.tools = ns.tools + {sep}{body} -%}}{{%- endfor -%}}")


def set_tools(expression: str) -> str:
    return f"{{%- set ns.tools = {expression} -%}}"


def append_tools(expression: str) -> str:
    return f"{{%- set ns.tools = ns.tools + {expression} -%}}"


DESCRIPTION = "(fn.description if fn.description is defined and fn.description is not none else '')"
PROPERTIES = ("(fn.parameters.properties if fn.parameters is defined and fn.parameters.properties is defined "
              "else {})")
# one call: an expression of `call` (the function), `args` (JSON text) and `call_id`
NAME_ARGS = "'{\"name\": \"' + call.name + '\", \"arguments\": ' + args"
NAME_PARAMETERS = "'{\"name\": \"' + call.name + '\", \"parameters\": ' + args + '}'"
