"""Write a registered template as a jinja `chat_template`, so saved tokenizers reproduce training."""

import re

from lmforge.data.templates.template import Template

_PLACEHOLDER = re.compile(r"(\{\{content\}\}|\{\{bos_token\}\}|\{\{eos_token\}\})")


def _expression(slot: str, content: str, strip: bool) -> str:
    """A slot as one jinja expression: literals quoted, placeholders as variables."""
    parts: list[str] = []
    for piece in _PLACEHOLDER.split(slot):
        if not piece:
            continue
        if piece == "{{content}}":
            parts.append(f"({content} | trim)" if strip else content)
        elif piece == "{{bos_token}}":
            parts.append("bos_token")
        elif piece == "{{eos_token}}":
            parts.append("eos_token")
        else:
            parts.append(_quote(piece))
    return "{{- " + " + ".join(parts) + " -}}" if parts else ""


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def template_to_jinja(template: Template) -> str:
    """A chat_template string that renders exactly what `Template.render` renders."""
    strip = template.strip_content
    slot = lambda s, content="''": _expression(s, content, strip)  # noqa: E731
    default_system = _quote(template.default_system)
    lines = [
        slot(template.format_prefix),
        "{%- if messages and messages[0]['role'] == 'system' -%}",
        "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}",
        "{%- else -%}",
        f"{{%- set system_message = {default_system} -%}}{{%- set loop_messages = messages -%}}",
        "{%- endif -%}",
    ]
    if template.format_system:
        lines.append("{%- if system_message -%}" + slot(template.format_system, "system_message") + "{%- endif -%}")
    lines += [
        "{%- for message in loop_messages -%}",
        "{%- if message['role'] == 'user' -%}" + slot(template.format_user, "message['content']"),
        "{%- elif message['role'] == 'assistant' -%}"
        + slot(template.format_generation)
        + slot(template.format_assistant, "message['content']")
        + slot(template.assistant_suffix),
    ]
    if template.format_system:
        lines.append("{%- elif message['role'] == 'system' -%}" + slot(template.format_system, "message['content']"))
    lines += [
        "{%- else -%}{{- raise_exception('unsupported role: ' + message['role']) -}}",
        "{%- endif -%}",
        "{%- endfor -%}",
        "{%- if add_generation_prompt -%}" + slot(template.format_generation) + "{%- endif -%}",
    ]
    return "\n".join(line for line in lines if line)
