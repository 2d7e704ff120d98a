"""An Ollama `Modelfile` for any registered template: TEMPLATE (Go template syntax), SYSTEM, stop words.

Tool definitions and calls are written for the qwen/hermes tool format (Ollama's `.Tools` and
`.ToolCalls`; each tool result in its own wrapper); other formats get a chat-only template. Ollama
cannot trim message text, so a template with `strip_content` expects already-trimmed messages.
"""

from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError

_QWEN_TOOLS = ('{{- if .Tools }}{{ if .System }}\n\n{{ end }}# Tools\n\nYou may call one or more functions to assist '
               "with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n"
               "<tools>{{- range .Tools }}\n{{ . }}{{- end }}\n</tools>\n\nFor each function call, return a json "
               "object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
               '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>{{- end }}')
_QWEN_CALLS = ('{{ range $j, $c := .ToolCalls }}{{ if or $j $m.Content }}\n{{ end }}<tool_call>\n'
               '{"name": "{{ $c.Function.Name }}", "arguments": {{ $c.Function.Arguments }}}\n</tool_call>{{ end }}')


def _slot(slot: str, content: str, bos: str, eos: str) -> str:
    if ("{{bos_token}}" in slot and bos is None) or ("{{eos_token}}" in slot and eos is None):
        raise TemplateError("this template writes bos/eos tokens: pass the model's tokenizer (--tokenizer)")
    return slot.replace("{{bos_token}}", bos or "").replace("{{eos_token}}", eos or "").replace("{{content}}", content)


def _quoted(text: str) -> str:
    if '"""' in text:
        raise TemplateError('a Modelfile value cannot contain """')
    return f'"""{text}"""'


def template_to_modelfile(template: Template, *, bos_token: str | None = None, eos_token: str | None = None,
                          num_ctx: int = 4096, source: str = ".") -> str:
    """The Modelfile text; `bos_token`/`eos_token` are needed where the template writes them."""
    tools = template.tools.name == "qwen" and template.can_render_tools and not template.system_in_user
    fill = lambda slot, content="": _slot(slot, content, bos_token, eos_token)  # noqa: E731
    system_text = "{{ .System }}" + (_QWEN_TOOLS if tools else "")
    parts = [fill(template.format_prefix)]
    if template.system_in_user:
        user_content = ("{{ if and $.System (eq $i 0) }}" + fill(template.format_system, "{{ $.System }}")
                        + "{{ end }}{{ .Content }}")
    else:
        user_content = "{{ .Content }}"
        if template.format_system:
            condition = "{{ if or .System .Tools }}" if tools else "{{ if .System }}"
            if template.system_always:
                parts.append(fill(template.format_system, system_text))
            else:
                parts.append(condition + fill(template.format_system, system_text) + "{{ end }}")
    parts.append("{{ range $i, $m := .Messages }}{{ if eq .Role \"user\" }}" + fill(template.format_user, user_content))
    answer = "{{ .Content }}" + (_QWEN_CALLS if tools else "")
    parts.append("{{ else if eq .Role \"assistant\" }}" + fill(template.format_generation)
                 + fill(template.format_assistant, answer) + fill(template.assistant_suffix))
    if tools:
        item = fill(template.format_observation_item, "{{ .Content }}")
        parts.append("{{ else if eq .Role \"tool\" }}" + fill(template.format_observation, item))
    parts.append("{{ end }}{{ end }}" + fill(template.format_generation) + template.thought_prefill)
    lines = ["# Ollama Modelfile written by lmforge", "", f"FROM {source}", "", f"TEMPLATE {_quoted(''.join(parts))}"]
    if template.default_system:
        lines.append(f"SYSTEM {_quoted(template.default_system)}")
    lines.append("")
    stops = list(dict.fromkeys([*template.stop_words, *([eos_token] if eos_token else [])]))
    lines += [f'PARAMETER stop "{stop}"' for stop in stops] + [f"PARAMETER num_ctx {num_ctx}"]
    return "\n".join(lines) + "\n"
