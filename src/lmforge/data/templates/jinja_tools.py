"""A tool format's jinja assembled into the chat template of saved tokenizers (jinja.py).

Each format carries its own pieces (`ToolFormat.jinja`, written beside its Python rendering in
tool_formats/); this module only asks for them and writes an answer's calls with them.
"""

from lmforge.data.templates.tool_formats import get_tool_format
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat, q
from lmforge.errors import TemplateError


def jinja_tool_format(name: str) -> JinjaToolFormat:
    pieces = get_tool_format(name).jinja
    if pieces is None:  # a format registered without its jinja
        raise TemplateError(f"tool_format `{name}` has no jinja rendering for saved tokenizers")
    return pieces


def calls_statements(fmt: JinjaToolFormat, content_separator: str) -> str:
    """Statements that render `message.tool_calls` into `ns.calls` and combine them with `text`."""
    call = fmt.call if fmt.call.startswith("{%") else f"{{%- set ns.call = {fmt.call} -%}}"
    separator = f"({q(fmt.separator)} if not loop.first else '') + " if fmt.separator else ""
    answer = fmt.answer or f"((text + {q(content_separator)} + calls) if text else calls)"
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
