"""Chat templates: data-only registrations, rendering, encoding with loss masks, jinja export."""

from lmforge.data.templates.registry import get_template, list_templates, register_template
from lmforge.data.templates.template import Message, Segment, Template

__all__ = ["Message", "Segment", "Template", "get_template", "list_templates", "register_template"]
