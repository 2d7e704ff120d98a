"""gpt-oss (Harmony): calls as commentary-channel messages to `functions.NAME` (see `harmony.py`)."""

from lmforge.data.templates import harmony
from lmforge.data.templates.tool_formats.base import ToolFormat

FORMATS = [
    ToolFormat("gpt_oss", harmony.render_tools, harmony.render_calls, harmony.parse_calls,
               render_answer=harmony.render_answer, description=harmony.DESCRIPTION),
]
