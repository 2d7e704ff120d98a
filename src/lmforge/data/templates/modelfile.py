"""An Ollama `Modelfile` for any registered template: TEMPLATE (Go's text/template), SYSTEM, stop words.

The TEMPLATE renders what `Template.render` renders with a generation prompt, from Ollama's data:
`.System` and `.Messages` (a conversation's first system message, else the Modelfile's SYSTEM, which
Ollama puts there), the system slot or the first question for it, every message slot, runs of tool
results, and the tool definitions and calls of each tool format with the Go pieces it carries
(tool_formats/, indexed by ollama_tools.py), placed as the template places them. A conversation that
ends with an answer is continued: the answer is written without its end of turn, as Ollama's own
templates do. Thoughts come from a message's `.Thinking` (Ollama
hands thinking apart from the content). What Ollama cannot reproduce is stated in the Modelfile's comments
(`notes`): trimming message text (`strip_content`), today's date in a dated default system prompt (SYSTEM
carries the date the file was written), tool formats without Go pieces, and each format's `limits`.
tests/data/test_templates_ollama.py evaluates the TEMPLATE and compares it with lmforge's rendering.
`template: auto` has no slots, only the tokenizer's jinja: its slots are derived from the jinja (`lmforge
template derive`) where they reproduce it, and where they cannot there is no Modelfile (`modelfile_slots` says why).
"""

import datetime
import json
import re

from lmforge.data.templates.auto import JinjaTemplate
from lmforge.data.templates.derive import USE_AUTO, derive_template
from lmforge.data.templates.ollama_tools import JSON_LIMITS, OLLAMA_TOOL_FORMATS, OllamaToolFormat, go_text
from lmforge.data.templates.template import Template
from lmforge.errors import TemplateError

_PLACEHOLDER = re.compile(r"\{\{(content|content_json|bos_token|eos_token|call_id|call_name|tools|date)\}\}")
# the first system message (Ollama lists it among the messages) is the system prompt; older Ollama versions
# leave it out of `.Messages` and give it as `.System` only
_SYSTEM = ('{{ $system := .System }}{{ if .Messages }}{{ if eq (index .Messages 0).Role "system" }}'
           "{{ $system = (index .Messages 0).Content }}{{ end }}{{ end }}")
_USER_INDEXES = ('{{ $firstUser := -1 }}{{ $lastUser := -1 }}{{ range $i, $m := .Messages }}{{ if eq .Role "user" }}'
                 "{{ if lt $firstUser 0 }}{{ $firstUser = $i }}{{ end }}{{ $lastUser = $i }}{{ end }}{{ end }}")
_NEXT_ROLE = ('{{ $rest := slice $.Messages $i }}{{ $next := "" }}{{ if gt (len $rest) 1 }}'
              "{{ $next = (index $rest 1).Role }}{{ end }}")


def _go_string(text: str) -> str:
    """A Go string literal."""
    return json.dumps(text, ensure_ascii=False)


class _Writer:
    """Writes one template's Go TEMPLATE in the phases `Template.render` writes (template.py `_Rendering`):
    `head` (prefix, system prompt, tool definitions), per message `user`, `assistant` (its `thought` and
    `calls`), `tool`, `later_system`, then `generation_prompt`. `notes` collects what it cannot reproduce."""

    def __init__(self, template: Template, bos: str | None, eos: str | None, date: datetime.date | None):
        self.t, self.bos, self.eos, self.date = template, bos, eos, date
        self.notes: list[str] = []
        self.tools = self._tool_format()

    def _tool_format(self) -> OllamaToolFormat | None:
        t = self.t
        if not t.can_render_tools:
            self.notes.append(f"tools: the `{t.name}` template has no slot for tool results, so this Modelfile "
                              "renders no tool definitions, calls or results")
            return None
        pieces = OLLAMA_TOOL_FORMATS.get(t.tools.name)
        if pieces is None:
            self.notes.append(f"tools: lmforge has no Ollama rendering of the `{t.tools.name}` tool format, so this "
                              "Modelfile renders no tool definitions, calls or results")
            return None
        self.notes.append(f"tools (`{t.tools.name}` format): {JSON_LIMITS}"
                          + (f"; {pieces.limits}" if pieces.limits else ""))
        return pieces

    def fill(self, slot: str, **values: str) -> str:
        """A slot as Go: its text literal, each placeholder replaced by the Go given for it."""
        out, position = [], 0
        for match in _PLACEHOLDER.finditer(slot):
            out.append(go_text(slot[position:match.start()]))
            name = match.group(1)
            if name in ("bos_token", "eos_token"):
                token = self.bos if name == "bos_token" else self.eos
                if token is None:
                    raise TemplateError(f"template `{self.t.name}` writes {name}: pass the model's tokenizer "
                                        "(--tokenizer)")
                out.append(go_text(token))
            elif name == "date":  # Harmony's `Current date`: the day the file was written, as a dated SYSTEM
                day = self.date or datetime.date.today()
                note = (f"date: the template's date is the day this file was written ({day:{self.t.date_format}}); "
                        "the model's template writes the current date")
                if note not in self.notes:
                    self.notes.append(note)
                out.append(go_text(day.strftime(self.t.date_format)))
            else:
                out.append(values.get(name, ""))
            position = match.end()
        out.append(go_text(slot[position:]))
        return "".join(out)

    def split(self, slot: str, **values: str) -> tuple[str, str]:
        """A slot as Go, before and after its `{{content}}`."""
        if slot.count("{{content}}") != 1:
            raise TemplateError(f"template `{self.t.name}`: slot {slot!r} must hold {{{{content}}}} once")
        before, _, after = slot.partition("{{content}}")
        return self.fill(before, **values), self.fill(after, **values)

    def when_tools(self, go: str) -> str:
        """`go` where the request has tools (always for `tools_always` templates)."""
        return go if self.t.tools_always else "{{ if $.Tools }}" + go + "{{ end }}"

    # -- the system prompt and the tool definitions ------------------------------------------------------

    def tool_text(self) -> str:
        return self.fill(self.t.format_tools, content=self.tools.definitions) if self.tools else ""

    def tools_in_system(self) -> bool:
        return bool(self.tools) and not self.t.tools_in_first_user and self.t.tools_position == "system"

    def system_text(self) -> tuple[str, str]:
        """(Go writing the system prompt, with the definitions where they go into it; Go condition: non-empty)."""
        t = self.t
        if not self.tools_in_system():
            text, condition = "{{ $system }}", "$system"
        else:
            separator = go_text(t.tools_separator)
            if t.tools_first:
                tail = ("" if t.tools_separator_always else "{{ if $system }}") + separator + "{{ $system }}"
                body = self.tool_text() + tail + ("" if t.tools_separator_always else "{{ end }}")
            else:
                body = ("{{ $system }}" + separator if t.tools_separator_always
                        else "{{ if $system }}{{ $system }}" + separator + "{{ end }}") + self.tool_text()
            text = "{{ if $.Tools }}" + body + "{{ else }}{{ $system }}{{ end }}" if not t.tools_always else body
            condition = "true" if t.tools_always else "or $system $.Tools"
        if t.format_system_text != "{{content}}":
            text = "{{ if " + condition + " }}" + self.fill(t.format_system_text, content=text) + "{{ end }}"
        return text, condition

    def system_slot(self) -> str:
        """The system segment (the pending text of the first question, for `system_in_user`)."""
        t = self.t
        text, condition = self.system_text()
        in_system = self.tools and t.tools_position == "in_system" and not t.tools_in_first_user
        turn = self.when_tools(self.tool_text()) if in_system else ""
        if in_system and condition != "true":  # the segment holds the definitions without a system prompt too
            condition = "true" if t.tools_always else f"or {condition} $.Tools"
        slot = self.fill(t.format_system, content=text, tools=turn)
        if t.format_system_tools and self.tools:
            slot = ("{{ if $.Tools }}" + self.fill(t.format_system_tools, content=text, tools=turn) + "{{ else }}"
                    + slot + "{{ end }}")
        return slot if t.system_always else "{{ if " + condition + " }}" + slot + "{{ end }}"

    def head(self) -> str:
        t = self.t
        parts = [_SYSTEM]
        if t.default_system_tools and t.default_system_tools != t.default_system:  # the default with tools
            parts.append("{{ if $.Tools }}{{ if eq $system " + _go_string(t.default_system_for(False, self.date))
                         + " }}{{ $system = " + _go_string(t.default_system_for(True, self.date))
                         + " }}{{ end }}{{ end }}")
        prefix = self.fill(t.format_prefix)
        if t.format_prefix_tools and self.tools:
            prefix = "{{ if $.Tools }}" + self.fill(t.format_prefix_tools) + "{{ else }}" + prefix + "{{ end }}"
        parts += [_USER_INDEXES, '{{ $prev := "" }}', prefix]
        turn = self.when_tools(self.tool_text()) if self.tools else ""
        if t.tools_position == "before_system" and not t.tools_in_first_user:
            parts.append(turn)
        if t.format_system and not t.system_in_user:
            parts.append(self.system_slot())
        elif not t.format_system:
            self.notes.append(f"system: the `{t.name}` template has no system prompt; Ollama's is left out")
        if t.tools_position == "after_system" and not t.tools_in_first_user:
            parts.append(turn)
        return "".join(parts)

    # -- messages -------------------------------------------------------------------------------------------

    def user(self) -> str:
        t = self.t
        first = ""
        if t.system_in_user and t.format_system:
            first += self.system_slot()
        if self.tools and t.tools_in_first_user:
            first += self.when_tools(self.tool_text())
        content = ("{{ if eq $i $firstUser }}" + first + "{{ end }}" if first else "") + "{{ .Content }}"
        before_last = ("{{ if eq $i $lastUser }}" + self.when_tools(self.tool_text()) + "{{ end }}"
                       if self.tools and t.tools_position == "before_last_user" and not t.tools_in_first_user else "")
        return '{{ if eq .Role "user" }}' + before_last + self.fill(t.format_user, content=content)

    def thought(self) -> str:
        t = self.t
        if not t.thought_words:
            return ""
        keep = ("$last" if t.prefill_final_answer else "true" if t.thoughts_in_history else "(gt $i $lastUser)")
        # Qwen3 writes an empty block before a final answer without a thought
        where = "(gt $i $lastUser)" if t.empty_thought_after_query else "$last"  # Qwen3.5: every answer after it
        empty = ("{{ if " + where + " }}{{ if " + keep + " }}" + self.fill(t.format_thought) + "{{ end }}{{ end }}"
                 if t.empty_thought_on_final else "")
        if t.empty_thought is not None:  # every answer without a kept thought opens with the family's empty block
            return ("{{ if and .Thinking " + keep + " }}" + self.fill(t.format_thought, content="{{ .Thinking }}")
                    + "{{ else }}" + t.empty_thought + "{{ end }}")
        if t.default_thinking == "false":  # thoughts are removed (qwen3_nothink)
            return empty
        thought = "{{ if " + keep + " }}" + self.fill(t.format_thought, content="{{ .Thinking }}") + "{{ end }}"
        return "{{ if .Thinking }}" + thought + ("{{ else }}" + empty if empty else "") + "{{ end }}"

    def calls(self) -> str:
        """Go writing an answer with tool calls: its text and its calls, as the format joins them."""
        pieces = self.tools
        calls = (pieces.prefix + "{{ range $j, $c := .ToolCalls }}"
                 + ("{{ if $j }}" + pieces.separator + "{{ end }}" if pieces.separator else "")
                 + pieces.call + "{{ end }}" + pieces.suffix)
        if pieces.answer:
            text = go_text(pieces.answer[0]) + "{{ .Content }}" + go_text(pieces.answer[1])
            return ("{{ if .Content }}" + text + "{{ end }}" if pieces.answer_with_text_only else text) + calls
        return "{{ if .Content }}{{ .Content }}" + go_text(self.t.tools.content_separator) + "{{ end }}" + calls

    def answer_slot(self, slot: str, text: str, suffix: str | None = None) -> str:
        """An answer slot around `text` and `suffix` (default assistant_suffix); the last message of a conversation
        is continued (no end of turn)."""
        before, after = self.split(slot)
        ending = self.t.end_in_history  # Harmony writes a final answer's <|return|> back as <|end|>
        if ending and after.endswith(go_text(ending[0])):
            after = after.removesuffix(go_text(ending[0])) + go_text(ending[1])
        return self.thought() + before + text + "{{ if not $last }}" + after \
            + self.fill(self.t.assistant_suffix if suffix is None else suffix) + "{{ end }}"

    def header(self, calls: bool) -> str:
        """The assistant header, another one right after tool results where the template has one (Gemma 4 none:
        the answer goes on in the turn that holds the results)."""
        t = self.t
        after = t.header(after_tools=True, calls=calls)
        if not self.tools or after == t.format_generation:
            return self.fill(t.format_generation)
        return ('{{ if eq $prev "tool" }}' + self.fill(after) + "{{ else }}" + self.fill(t.format_generation)
                + "{{ end }}")

    def assistant(self) -> str:
        t = self.t
        prefill = ("{{ if $last }}" + go_text(t.thought_prefill) + "{{ end }}"  # Nemotron's final answer
                   if t.prefill_final_answer and t.thought_prefill else "")
        plain = self.header(False) + prefill + self.answer_slot(t.format_assistant, "{{ .Content }}")
        if self.tools:
            plain = ("{{ if .ToolCalls }}" + self.header(True) + prefill
                     + self.answer_slot(t.format_function or t.format_assistant, self.calls(), t.function_suffix)
                     + "{{ else }}" + plain + "{{ end }}")
        return '{{ else if eq .Role "assistant" }}' + plain

    def tool(self) -> str:
        """A tool result: a run of them is wrapped once in format_observation, joined by observation_separator."""
        t = self.t
        if not self.tools:
            return ""
        opening, closing = self.split(t.format_observation)
        item = self.fill(t.format_observation_item, content="{{ .Content }}", content_json="{{ json .Content }}",
                         call_id="{{ .ToolCallID }}", call_name="{{ .ToolName }}")
        run_start = '{{ if ne $prev "tool" }}' + opening + "{{ end }}" if opening else ""
        separator = go_text(t.observation_separator)
        run_end = (_NEXT_ROLE + '{{ if eq $next "tool" }}' + separator + "{{ else }}" + closing + "{{ end }}"
                   if separator or closing else "")
        return '{{ else if eq .Role "tool" }}' + run_start + item + run_end

    def later_system(self) -> str:
        """A system message after the first one, in place (as `Template.render` writes it)."""
        t = self.t
        if not t.format_system or t.system_in_user:
            return ""
        return ('{{ else if eq .Role "system" }}{{ if $i }}' + self.fill(t.format_system, content="{{ .Content }}")
                + "{{ end }}")

    def generation_prompt(self) -> str:
        t = self.t
        empty_thought = ""
        if t.empty_thought_on_final:  # Qwen3 closes an empty think block when thinking is off
            block = self.fill(t.format_thought, content="")
            empty_thought = ("{{ if not $.Think }}" + block + "{{ end }}" if t.default_thinking == "false"
                             else "{{ if $.IsThinkSet }}{{ if not $.Think }}" + block + "{{ end }}{{ end }}")
        prompt = self.fill(t.format_generation) + go_text(t.thought_prefill)
        after = t.header(after_tools=True, calls=False)
        if self.tools and after != t.format_generation:  # its own header after tool results, without the prefill
            prompt = '{{ if eq $prev "tool" }}' + self.fill(after) + "{{ else }}" + prompt + "{{ end }}"
        prompt += empty_thought
        return '{{ if ne $prev "assistant" }}' + prompt + "{{ end }}" if prompt else ""

    def template(self) -> str:
        if self.t.strip_content:
            self.notes.append("content: lmforge trims message text for this template; Ollama cannot, so send "
                              "trimmed messages")
        return (self.head() + "{{ range $i, $m := .Messages }}{{ $last := eq (len (slice $.Messages $i)) 1 }}"
                + self.user() + self.assistant() + self.tool() + self.later_system()
                + "{{ end }}{{ $prev = .Role }}{{ end }}" + self.generation_prompt())


def go_template(template: Template, *, bos_token: str | None = None, eos_token: str | None = None,
                date: datetime.date | None = None) -> tuple[str, list[str]]:
    """The template as an Ollama TEMPLATE, and the notes on what it cannot reproduce."""
    writer = _Writer(template, bos_token, eos_token, date)
    return writer.template(), writer.notes


def _quoted(text: str) -> str:
    if '"""' in text:
        raise TemplateError(f'cannot write {text[:40]!r}... into a Modelfile: it contains `"""`')
    return f'"""{text}"""'


def modelfile_slots(template: Template, bos_token: str | None = None,
                    eos_token: str | None = None) -> tuple[Template | None, str]:
    """The slot template a Modelfile is written from, or None and why there can be none. A registered template is its
    own; `template: auto` (the tokenizer's jinja) gets the slots `lmforge template derive` reads off the jinja, when
    they reproduce it (text, trained answers, stop words): Ollama's Go template cannot run jinja."""
    if not isinstance(template, JinjaTemplate):
        return template, ""
    derived = derive_template(template.chat_template, template.name, bos_token or "", eos_token or "")
    if derived.reproduces:
        return derived.template, ""
    why = derived.not_expressible or "; ".join(derived.mismatches)
    return None, ("the model's jinja chat template cannot be written as an Ollama template: "
                  + why.replace(f"; {USE_AUTO}", ""))


def template_to_modelfile(template: Template, *, source: str = ".", bos_token: str | None = None,
                          eos_token: str | None = None, parameters: dict[str, float | int] | None = None,
                          date: datetime.date | None = None) -> str:
    """The Modelfile text for `source` (`.` for a model folder, or a GGUF file). `bos_token`/`eos_token` are
    needed where the template writes them; `date` fills a dated default system prompt (default: today)."""
    slots, why = modelfile_slots(template, bos_token, eos_token)
    if slots is None:
        raise TemplateError(f"no Modelfile: {why}")
    text, notes = go_template(slots, bos_token=bos_token, eos_token=eos_token, date=date)
    if slots is not template:
        notes.insert(0, "slots derived from the model's jinja chat template (`lmforge template derive`)")
    template = slots
    system = template.default_system_for(False, date)
    if system != template.default_system:
        notes.append(f"system: SYSTEM carries the date this file was written ({system}); the model's template "
                     "writes the current date")
    lines = [f"FROM {source}", f"# Ollama Modelfile written by lmforge from the `{template.name}` template"]
    lines += [f"# {note}" for note in notes]
    lines.append(f"TEMPLATE {_quoted(text)}")
    if system:
        lines.append(f"SYSTEM {_quoted(system)}")
    stops = dict.fromkeys([*template.stop_words, *([eos_token] if eos_token else [])])
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    lines += [f"PARAMETER {name} {value}" for name, value in (parameters or {}).items()]
    return "\n".join(lines) + "\n"
