"""gpt-oss (Harmony): calls as commentary-channel messages to `functions.NAME` (see `harmony.py`, which
writes both the Python rendering and its jinja)."""

from lmforge.data.templates import harmony
from lmforge.data.templates.tool_formats import register_tool_format
from lmforge.data.templates.tool_formats.base import ToolFormat
from lmforge.data.templates.tool_formats.jinja_pieces import JinjaToolFormat

register_tool_format(ToolFormat(
    "gpt_oss", harmony.render_tools, harmony.render_calls, harmony.parse_calls,
    render_answer=harmony.render_answer, description=harmony.DESCRIPTION,
    jinja=JinjaToolFormat(harmony.JINJA_DEFINITIONS, harmony.JINJA_CALL, harmony.JINJA_SEPARATOR,
                          answer=harmony.JINJA_ANSWER, macros=harmony.JINJA_MACROS)))
