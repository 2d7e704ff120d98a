"""Write a registered template as a jinja `chat_template`, so saved tokenizers reproduce training.

The jinja covers every slot (system folded into the first user turn, observations, the end slot,
thought prefill), think blocks by the `auto` policy (and `enable_thinking=False` at the generation
prompt), dated default system prompts and slots (`strftime_now`, as the model's own templates) and, for every
tool format, tool definitions, assistant tool calls and tool results (jinja_tools.py). Tool-call ids
come from the messages (`id` on calls, `tool_call_id` on results: OpenAI-style requests carry them);
tests/data/test_templates_jinja.py proves what is covered.
"""

import re
from typing import Any

from lmforge.data.templates.jinja_tools import calls_statements, jinja_tool_format
from lmforge.data.templates.template import Template

_PLACEHOLDER = re.compile(r"(\{\{content\}\}|\{\{content_json\}\}|\{\{bos_token\}\}|\{\{eos_token\}\}"
                          r"|\{\{call_id\}\}|\{\{call_name\}\}|\{\{tools\}\}|\{\{date\}\})")
# placeholders that are a jinja variable of the same role
_VARIABLES = {"{{bos_token}}": "bos_token", "{{eos_token}}": "eos_token", "{{call_id}}": "call_id",
              "{{call_name}}": "ns.call_name", "{{tools}}": "ns.tool_turn", "{{date}}": "lmforge_date"}
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
        elif piece in _VARIABLES:
            parts.append(_VARIABLES[piece])
        else:
            parts.append(_quote(piece))
    return " + ".join(parts) if parts else "''"


def _out(expression: str) -> str:
    return "{{- " + expression + " -}}" if expression != "''" else ""


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return f"'{escaped}'"


def _prefix_expression(template: Template, strip: bool) -> str:
    prefix = _expression(template.format_prefix, "''", strip)
    if not template.format_prefix_tools:
        return prefix
    with_tools = _expression(template.format_prefix_tools, "''", strip)
    return f"(({with_tools}) if tools else ({prefix}))"


def _default_system(text: str, date_format: str) -> str:
    """A default system prompt as a jinja expression: `{{date}}` is today, by the environment's strftime_now."""
    before, found, after = text.partition("{{date}}")
    if not found:
        return _quote(text)
    return f"{_quote(before)} + strftime_now({_quote(date_format)}) + {_quote(after)}"


def _tool_definition_lines(template: Template) -> list[str]:
    """Render the definitions into `ns.tool_text` (wrapped in format_tools) and place them: into the system
    prompt, `ns.tool_first` (the first question), or `ns.tool_turn` (a turn of its own)."""
    fmt = jinja_tool_format(template.tools.name)
    normalize = ("{%- set ns.tool_list = [] -%}{%- for tool in (tools or []) -%}{%- set ns.tool_list = ns.tool_list "
                 "+ [tool if (tool.type is defined and tool.type == 'function' and tool.function is defined) else "
                 "{'type': 'function', 'function': tool}] -%}{%- endfor -%}")
    lines = [fmt.macros, "{%- if tools or " + ("true" if template.tools_always else "false") + " -%}", normalize,
             "{%- set ns.tools = '' -%}{%- if ns.tool_list or " + ("true" if template.tools_always else "false")
             + " -%}" + fmt.definitions + "{%- endif -%}",
             "{%- set ns.tool_text = " + _expression(template.format_tools, "ns.tools", False) + " -%}"]
    if template.tools_in_first_user:
        lines.append("{%- set ns.tool_first = ns.tool_text -%}")
    elif template.tools_position == "system":
        always = "true" if template.tools_separator_always else "false"
        separator = _quote(template.tools_separator)
        joined = (f"ns.tool_text + {separator} + system_message" if template.tools_first
                  else f"system_message + {separator} + ns.tool_text")
        lines.append(f"{{%- if system_message or {always} -%}}{{%- set system_message = {joined} -%}}{{%- else -%}}"
                     "{%- set system_message = ns.tool_text -%}{%- endif -%}")
    else:
        lines.append("{%- set ns.tool_turn = ns.tool_text -%}")
    lines.append("{%- endif -%}")
    return lines


def _calls(template: Template) -> str:
    return calls_statements(jinja_tool_format(template.tools.name), template.tools.content_separator)


def _thought_lines(template: Template) -> list[str]:
    """Reasoning templates: split the think block off `text` into `ns.thought` by the `auto` policy
    (thinking off only changes the generation prompt, through the `enable_thinking` variable)."""
    if not template.thought_words:
        return ["{%- set ns.thought = none -%}"]
    open_word, close_word = map(_quote, template.thought_words)
    keep = ("loop.last" if template.prefill_final_answer else
            "true" if template.thoughts_in_history else "(loop.index0 > ns.last_query)")
    lines = [
        "{%- set ns.thought = none -%}",
        f"{{%- if {close_word} in text -%}}"
        f"{{%- set ns.thought = text.rpartition({close_word})[0].split({open_word})[-1].strip('\\n') -%}}"
        f"{{%- set text = text.rpartition({close_word})[2].lstrip('\\n') -%}}{{%- endif -%}}",
        f"{{%- if not {keep} -%}}{{%- set ns.thought = none -%}}{{%- endif -%}}",
    ]
    if template.empty_thought is not None:
        lines.append("{%- if ns.thought is none -%}{%- set ns.thought = '' -%}{%- endif -%}")
    if template.empty_thought_on_final:
        where = "(loop.index0 > ns.last_query)" if template.empty_thought_after_query else "loop.last"
        lines += [
            f"{{%- if ns.thought == '' and not {where} -%}}{{%- set ns.thought = none -%}}{{%- endif -%}}",
            f"{{%- if {keep} and ns.thought is none and {where} -%}}"
            + _out(_expression(template.format_thought, "''", False)) + "{%- endif -%}",
        ]
    return lines


def _system_lines(template: Template, strip: bool) -> list[str]:
    """The system slot (with the tools turn before or after it), or the pending system text for system_in_user."""
    def slot_expression(text: str) -> str:
        if not template.format_system_tools:
            return _expression(template.format_system, text, False)
        return (f"(({_expression(template.format_system_tools, text, False)}) if tools else "
                f"({_expression(template.format_system, text, False)}))")

    inner = _expression(template.format_system_text, "system_message", strip and not template.system_in_user)
    # the slot is written with a system prompt, always, or when it holds the tool definitions
    always = "true" if template.system_always else "ns.tool_turn" if template.tools_position == "in_system" else "false"
    lines = [_out("ns.tool_turn") if template.tools_position == "before_system" else "",
             f"{{%- if system_message or {always} -%}}",
             f"{{%- set ns.system_text = ({inner}) if system_message else '' -%}}"]
    if template.system_in_user:
        lines.append("{%- set ns.pending = " + slot_expression("ns.system_text") + " -%}")
    elif template.format_system:
        lines.append(_out(slot_expression("ns.system_text")))
    else:
        lines.append("{{- raise_exception('this template has no system slot') -}}")
    lines.append("{%- endif -%}")
    if template.tools_position == "after_system":
        lines.append(_out("ns.tool_turn"))
    return lines


def _call_name_lines(template: Template) -> str:
    """`ns.call_name`: the function a tool result answers (the call with its id, else the next unanswered
    call), as `Template.render` pairs them (`_Rendering.answered_call`)."""
    if "{{call_name}}" not in template.format_observation_item:
        return ""
    return ("{%- set ns.found = -1 -%}"
            "{%- for item in ns.answered -%}{%- if ns.found < 0 and call_id and item.id is defined and "
            "item.id is not none and (item.id | string) == call_id -%}{%- set ns.found = loop.index0 -%}"
            "{%- endif -%}{%- endfor -%}"
            "{%- if ns.found < 0 -%}{%- if not ns.answered -%}"
            "{{- raise_exception('a tool result follows no unanswered tool call of the answer before it') -}}"
            "{%- endif -%}{%- set ns.found = 0 -%}{%- endif -%}"
            "{%- set answered = ns.answered[ns.found] -%}"
            "{%- set ns.call_name = (answered.function if answered.function is defined else answered).name -%}"
            "{%- set ns.rest = [] -%}{%- for item in ns.answered -%}{%- if loop.index0 != ns.found -%}"
            "{%- set ns.rest = ns.rest + [item] -%}{%- endif -%}{%- endfor -%}{%- set ns.answered = ns.rest -%}")


def _answer_lines(template: Template) -> list[str]:
    """`ns.answer`: the answer slot (the calls' slot for an answer with tool calls) after its thought, with
    `end_in_history` applied to answers that do not end the conversation; then written with its suffix."""
    lines = [
        "{%- if message.tool_calls -%}{%- set ns.answer = "
        + _expression(template.format_function or template.format_assistant, "text", False)
        + " -%}{%- else -%}{%- set ns.answer = " + _expression(template.format_assistant, "text", False)
        + " -%}{%- endif -%}",
        "{%- if ns.thought is not none -%}{%- set ns.answer = "
        + _expression(template.format_thought, "ns.thought", False) + " + ns.answer -%}{%- endif -%}",
    ]
    if template.empty_thought is not None:  # in place of the block written above for an empty thought
        lines[-1] = ("{%- if ns.thought == '' -%}{%- set ns.answer = " + _quote(template.empty_thought)
                     + " + ns.answer -%}{%- elif ns.thought is not none -%}{%- set ns.answer = "
                     + _expression(template.format_thought, "ns.thought", False) + " + ns.answer -%}{%- endif -%}")
    if template.end_in_history:
        written, replacement = template.end_in_history
        lines.append(f"{{%- if not (loop.last and not add_generation_prompt) and ns.answer.endswith({_quote(written)})"
                     f" -%}}{{%- set ns.answer = ns.answer[:{-len(written)}] + {_quote(replacement)} -%}}"
                     "{%- endif -%}")
    if "{{call_name}}" in template.format_observation_item:
        lines.append("{%- set ns.answered = message.tool_calls if message.tool_calls else [] -%}")
    suffix = _out(_expression(template.assistant_suffix, "''", False))
    if template.function_suffix is not None:  # an answer with calls has its own (Gemma 4: none)
        suffix = ("{%- if message.tool_calls -%}" + _out(_expression(template.function_suffix, "''", False))
                  + "{%- else -%}" + suffix + "{%- endif -%}")
    return [*lines, _out("ns.answer"), suffix]


def _date_line(template: Template) -> str:
    """`lmforge_date`: today, for slots that write `{{date}}` (default system prompts are handled apart)."""
    slots = [value for key, value in vars(template).items()
             if isinstance(value, str) and key not in ("default_system", "default_system_tools")]
    if not any("{{date}}" in slot for slot in slots):
        return ""
    return f"{{%- set lmforge_date = strftime_now({_quote(template.date_format)}) -%}}"


def _header_lines(template: Template) -> tuple[str, str]:
    """(an answer's header, the generation prompt's header with its thought prefill): for templates with their
    own header after tool results (DeepSeek), chosen by whether the message before is a tool result."""
    header = _out(_expression(template.format_generation, "''", False))
    prompt = header + _out(_quote(template.thought_prefill) if template.thought_prefill else "''")
    after = template.format_generation_after_tools
    if after is None:
        return header, prompt
    calls_after = template.format_generation_calls_after_tools
    calls_after = after if calls_after is None else calls_after
    after_out, calls_after_out = (_out(_expression(slot, "''", False)) for slot in (after, calls_after))
    answer = ("{%- if loop.previtem is defined and loop.previtem['role'] == 'tool' -%}"
              f"{{%- if message.tool_calls -%}}{calls_after_out}{{%- else -%}}{after_out}{{%- endif -%}}"
              f"{{%- else -%}}{header}{{%- endif -%}}")
    prompt = ("{%- if loop_messages and loop_messages[-1]['role'] == 'tool' -%}"
              f"{after_out}{{%- else -%}}{prompt}{{%- endif -%}}")
    return answer, prompt


def template_to_jinja(template: Template) -> str:
    """A chat_template string that renders exactly what `Template.render` renders (see module docstring), in
    the same phases: the head (prefix, system prompt and tool definitions), each turn (user, assistant with
    its thought and calls, a run of tool results, a later system message), the generation prompt or end."""
    flush = _flush_results(template)
    lines = [
        *_head_lines(template),
        "{%- for message in loop_messages -%}{%- if message['role'] == 'user' -%}"
        "{%- set ns.last_query = loop.index0 -%}{%- endif -%}{%- endfor -%}",
        "{%- for message in loop_messages -%}",
        "{%- if message['role'] != 'tool' -%}" + flush + "{%- endif -%}",
        _user_line(template),
        *_assistant_lines(template),
        _tool_result_line(template),
        _later_system_line(template),
        "{%- else -%}{{- raise_exception('unsupported role: ' + message['role']) -}}",
        "{%- endif -%}",
        "{%- endfor -%}",
        flush,
        _generation_prompt_line(template),
    ]
    return "\n".join(line for line in lines if line)


def _message_text(template: Template) -> str:
    return "(message['content'] | trim)" if template.strip_content else "message['content']"


def _head_lines(template: Template) -> list[str]:
    """The namespace, the prefix, the system prompt (a leading system message, else the default) with the tool
    definitions placed, and the system slot."""
    default = _default_system(template.default_system, template.date_format)
    if template.default_system_tools:
        with_tools = _default_system(template.default_system_tools, template.date_format)
        default = f"(({with_tools}) if tools else ({default}))"
    return [
        "{%- set ns = namespace(tools='', tool_list=[], tool_text='', tool_first='', tool_turn='', calls='', call='', "
        "pending='', system_text='', observations='', thought=none, last_query=-1, answer='', answered=[], rest=[], "
        "found=-1, call_name='') -%}",
        _date_line(template),
        _out(_prefix_expression(template, template.strip_content)),
        "{%- if messages and messages[0]['role'] == 'system' -%}",
        "{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}",
        "{%- else -%}",
        f"{{%- set system_message = {default} -%}}{{%- set loop_messages = messages -%}}",
        "{%- endif -%}",
        *_tool_definition_lines(template),
        *_system_lines(template, template.strip_content),
    ]


def _user_line(template: Template) -> str:
    """A user turn; the tool turn before the last one, the system slot or definitions opening the first."""
    before_last_user = ("{%- if loop.index0 == ns.last_query -%}" + _out("ns.tool_turn") + "{%- endif -%}"
                        if template.tools_position == "before_last_user" else "")
    return ("{%- if message['role'] == 'user' -%}" + before_last_user
            + _out(_expression(template.format_user, f"ns.pending + ns.tool_first + {_message_text(template)}", False))
            + "{%- set ns.pending = '' -%}{%- set ns.tool_first = '' -%}")


def _assistant_lines(template: Template) -> list[str]:
    """Header, [prefill], the thought split off by the policy, the calls, the answer and its suffix."""
    header, _ = _header_lines(template)
    prefill = ("{%- if loop.last -%}" + _out(_quote(template.thought_prefill)) + "{%- endif -%}"
               if template.prefill_final_answer and template.thought_prefill else "")
    return [
        "{%- elif message['role'] == 'assistant' -%}" + header + prefill,
        f"{{%- set text = {_message_text(template)} -%}}",
        *_thought_lines(template),
        "{%- if message.tool_calls -%}" + _calls(template) + "{%- endif -%}",
        *_answer_lines(template),
    ]


def _tool_result_line(template: Template) -> str:
    """A tool result, collected into `ns.observations` (written as one turn by `_flush_results`)."""
    separator = _quote(template.observation_separator)
    return ("{%- elif message['role'] == 'tool' -%}"
            "{%- set call_id = message.tool_call_id if message.tool_call_id is defined else '' -%}"
            + _call_name_lines(template) +
            f"{{%- set ns.observations = ns.observations + ({separator} if ns.observations else '') + "
            + _expression(template.format_observation_item, "message['content']", False) + " -%}")


def _flush_results(template: Template) -> str:
    return ("{%- if ns.observations -%}" + _out(_expression(template.format_observation, "ns.observations", False))
            + "{%- set ns.observations = '' -%}{%- endif -%}")


def _later_system_line(template: Template) -> str:
    if not template.format_system or template.system_in_user:
        return ""
    return ("{%- elif message['role'] == 'system' -%}" + _out(_expression(
        template.format_system.replace("{{tools}}", ""), "message['content']", template.strip_content)))


def _generation_prompt_line(template: Template) -> str:
    """The generation prompt (header, thought prefill, an empty block with thinking off), else `format_end`."""
    _, prompt_header = _header_lines(template)
    empty_thought = ""
    if template.empty_thought_on_final:
        empty_thought = (("{%- if enable_thinking is not defined or enable_thinking is false -%}"
                          if template.default_thinking == "false" else
                          "{%- if enable_thinking is defined and enable_thinking is false -%}")
                         + _out(_expression(template.format_thought, "''", False)) + "{%- endif -%}")
    return ("{%- if add_generation_prompt -%}" + prompt_header + empty_thought
            + "{%- else -%}" + _out(_expression(template.format_end, "''", False)) + "{%- endif -%}")


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
