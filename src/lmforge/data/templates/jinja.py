"""Write a registered template as a jinja `chat_template`, so saved tokenizers reproduce training.

The jinja covers every slot (system folded into the first user turn, observations, the end slot,
thought prefill), think blocks by the `auto` policy (and `enable_thinking=False` at the generation
prompt) and, for the `qwen`/`hermes` tool format, tool definitions and calls. Other tool formats
raise a clear error from the saved template when tools are passed (tests/data/test_templates_jinja.py
proves what is covered).
"""

import re
from typing import Any

from lmforge.data.templates.template import Template

_PLACEHOLDER = re.compile(r"(\{\{content\}\}|\{\{content_json\}\}|\{\{bos_token\}\}|\{\{eos_token\}\})")
# tool formats whose definitions and calls the saved jinja writes
_JINJA_TOOL_CALLS = {
    "qwen": ("'<tool_call>\\n{\"name\": \"' + call.name + '\", \"arguments\": ' + call.arguments | tojson"
             " + '}\\n</tool_call>'"),
}
_JINJA_TOOL_DEFINITIONS = {
    "qwen": ("{%- set ns.tools = '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
             "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' -%}"
             "{%- for tool in tools -%}{%- set ns.tools = ns.tools + '\\n' + tool | tojson -%}{%- endfor -%}"
             "{%- set ns.tools = ns.tools + '\\n</tools>\\n\\nFor each function call, return a json object with "
             "function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n"
             "{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call>' -%}"),
}


def _expression(slot: str, content: str, strip: bool) -> str:
    """A slot as one jinja expression: literals quoted, placeholders as variables."""
    parts: list[str] = []
    for piece in _PLACEHOLDER.split(slot):
        if not piece:
            continue
        if piece == "{{content}}":
            parts.append(f"({content} | trim)" if strip else f"({content})")
        elif piece == "{{content_json}}":
            parts.append(f"(({content} | trim) | tojson)" if strip else f"({content} | tojson)")
        elif piece == "{{bos_token}}":
            parts.append("bos_token")
        elif piece == "{{eos_token}}":
            parts.append("eos_token")
        else:
            parts.append(_quote(piece))
    return " + ".join(parts) if parts else "''"


def _out(expression: str) -> str:
    return "{{- " + expression + " -}}" if expression != "''" else ""


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _tool_lines(template: Template) -> list[str]:
    definitions = _JINJA_TOOL_DEFINITIONS.get(template.tools.name)
    separator = _quote(template.tools_separator)
    if definitions is None:
        return ["{%- if tools -%}{{- raise_exception('this saved template writes tool definitions only for the "
                f"qwen/hermes tool format, not `{template.tools.name}`') -}}}}{{%- endif -%}}"]
    always = "true" if template.tools_separator_always else "false"
    return ["{%- if tools -%}" + definitions,
            f"{{%- if system_message or {always} -%}}{{%- set system_message = system_message + {separator} + "
            "ns.tools -%}{%- else -%}{%- set system_message = ns.tools -%}{%- endif -%}{%- endif -%}"]


def _calls(template: Template) -> str:
    call = _JINJA_TOOL_CALLS.get(template.tools.name)
    if call is None:
        return (f"{{{{- raise_exception('this saved template writes tool calls only for the qwen/hermes tool "
                f"format, not `{template.tools.name}`') -}}}}")
    separator = _quote(template.tools.content_separator)
    return ("{%- set ns.calls = '' -%}{%- for item in message.tool_calls -%}"
            "{%- set call = item.function if item.function is defined else item -%}"
            "{%- set ns.calls = ns.calls + ('\\n' if not loop.first else '') + " + call + " -%}{%- endfor -%}"
            f"{{%- set text = (text + {separator} + ns.calls) if text else ns.calls -%}}")


def _thought_lines(template: Template) -> list[str]:
    """Reasoning templates: split the think block off `text` into `ns.thought` by the `auto` policy
    (thinking off only changes the generation prompt, through the `enable_thinking` variable)."""
    if not template.thought_words:
        return ["{%- set ns.thought = none -%}"]
    open_word, close_word = map(_quote, template.thought_words)
    keep = "true" if template.thoughts_in_history else "(loop.index0 > ns.last_query)"
    lines = [
        "{%- set ns.thought = none -%}",
        f"{{%- if {close_word} in text -%}}"
        f"{{%- set ns.thought = text.rpartition({close_word})[0].split({open_word})[-1].strip('\\n') -%}}"
        f"{{%- set text = text.rpartition({close_word})[2].lstrip('\\n') -%}}{{%- endif -%}}",
        f"{{%- if not {keep} -%}}{{%- set ns.thought = none -%}}{{%- endif -%}}",
    ]
    if template.empty_thought_on_final:
        lines += [
            "{%- if ns.thought == '' and not loop.last -%}{%- set ns.thought = none -%}{%- endif -%}",
            f"{{%- if {keep} and ns.thought is none and loop.last -%}}"
            + _out(_expression(template.format_thought, "''", False)) + "{%- endif -%}",
        ]
    return lines


def template_to_jinja(template: Template) -> str:
    """A chat_template string that renders exactly what `Template.render` renders (see module docstring)."""
    strip = template.strip_content
    text = "(message['content'] | trim)" if strip else "message['content']"
    answer_slot = template.format_function or template.format_assistant
    lines = [
        "{%- set ns = namespace(tools='', calls='', pending='', observations='', thought=none, last_query=-1) -%}",
        _out(_expression(template.format_prefix, "''", strip)),
        "{%- if messages and messages[0]['role'] == 'system' -%}",
        "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}",
        "{%- else -%}",
        f"{{%- set system_message = {_quote(template.default_system)} -%}}{{%- set loop_messages = messages -%}}",
        "{%- endif -%}",
        *_tool_lines(template),
        f"{{%- if system_message or {'true' if template.system_always else 'false'} -%}}",
    ]
    if template.system_in_user:
        lines.append("{%- set ns.pending = " + _expression(template.format_system, "system_message", False) + " -%}")
    elif template.format_system:
        lines.append(_out(_expression(template.format_system, "system_message", strip)))
    else:
        lines.append("{{- raise_exception('this template has no system slot') -}}")
    flush = ("{%- if ns.observations -%}" + _out(_expression(template.format_observation, "ns.observations", False))
             + "{%- set ns.observations = '' -%}{%- endif -%}")
    lines += [
        "{%- endif -%}",
        "{%- for message in loop_messages -%}{%- if message['role'] == 'user' -%}"
        "{%- set ns.last_query = loop.index0 -%}{%- endif -%}{%- endfor -%}",
        "{%- for message in loop_messages -%}",
        "{%- if message['role'] != 'tool' -%}" + flush + "{%- endif -%}",
        "{%- if message['role'] == 'user' -%}"
        + _out(_expression(template.format_user, f"ns.pending + {text}", False)) + "{%- set ns.pending = '' -%}",
        "{%- elif message['role'] == 'assistant' -%}" + _out(_expression(template.format_generation, "''", False)),
        f"{{%- set text = {text} -%}}",
        *_thought_lines(template),
        "{%- if message.tool_calls -%}" + _calls(template) + "{%- endif -%}",
        "{%- if ns.thought is not none -%}{%- set text = "
        + _expression(template.format_thought, "ns.thought", False) + " + text -%}{%- endif -%}",
        "{%- if message.tool_calls -%}" + _out(_expression(answer_slot, "text", False)) + "{%- else -%}"
        + _out(_expression(template.format_assistant, "text", False)) + "{%- endif -%}",
        _out(_expression(template.assistant_suffix, "''", False)),
        "{%- elif message['role'] == 'tool' -%}{%- set ns.observations = ns.observations + "
        + _expression(template.format_observation_item, "message['content']", False) + " -%}",
    ]
    if template.format_system and not template.system_in_user:
        lines.append("{%- elif message['role'] == 'system' -%}"
                     + _out(_expression(template.format_system, "message['content']", strip)))
    lines += [
        "{%- else -%}{{- raise_exception('unsupported role: ' + message['role']) -}}",
        "{%- endif -%}",
        "{%- endfor -%}",
        flush,
        "{%- if add_generation_prompt -%}" + _out(_expression(template.format_generation, "''", False))
        + _out(_quote(template.thought_prefill) if template.thought_prefill else "''")
        + ((("{%- if enable_thinking is not defined or enable_thinking is false -%}"
             if template.default_thinking == "false" else
             "{%- if enable_thinking is defined and enable_thinking is false -%}")
            + _out(_expression(template.format_thought, "''", False)) + "{%- endif -%}")
           if template.empty_thought_on_final else "")
        + "{%- else -%}" + _out(_expression(template.format_end, "''", False)) + "{%- endif -%}",
    ]
    return "\n".join(line for line in lines if line)


def saved_chat_template(template: Template, tokenizer: Any) -> str:
    """The chat template saved with a trained or exported model: the tokenizer's own for `template: auto`
    (it is what was trained on), else ours written as jinja."""
    own = getattr(template, "chat_template", None)
    return own if isinstance(own, str) and own else template_to_jinja(template)


def prepare_saved_tokenizer(template: Template, tokenizer: Any) -> None:
    """Give a tokenizer about to be saved the training chat template and, for `replace_eos` templates, the
    template's end-of-turn token as eos (so tools that stop on the tokenizer's eos stop after an answer,
    also when a base model with another eos was fine-tuned)."""
    tokenizer.chat_template = saved_chat_template(template, tokenizer)
    if template.replace_eos and template.stop_words and tokenizer.eos_token != template.stop_words[0]:
        tokenizer.eos_token = template.stop_words[0]
