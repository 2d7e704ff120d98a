"""`template: auto`: the tokenizer's own jinja `chat_template`, for training and for chat; cross-checks.

Chat renders the jinja as `apply_chat_template(add_generation_prompt=True)` does, `enable_thinking`
passed to templates that read it. Training splits a conversation into supervised turns by rendering
prefixes (`jinja_turns`): each answer in the context the template shows the model when it generates it,
so templates that rewrite history (Qwen3 drops earlier thoughts) train too, as more than one example
per conversation where they must (docs/templates.md, "template: auto").
"""

import datetime
import difflib
import functools
import re
from dataclasses import dataclass, field, replace
from typing import Any

from transformers import PreTrainedTokenizerBase

from lmforge.data.templates.jinja_render import (
    PRESERVE_VARIABLES,
    PROBE_ANSWER,
    THOUGHT_WORDS,
    JinjaStyle,
    detect_style,
    render_jinja,
)
from lmforge.data.templates.jinja_turns import (
    Render,
    Turn,
    compute_turns,
    example_segments,
    group_turns,
    stitch_turns,
    writes_calls,
)
from lmforge.data.templates.messages import (
    Message,
    Thinking,
    ToolCall,
    assign_tool_call_ids,
    normalize_tools,
    split_thought,
)
from lmforge.data.templates.registry import list_templates
from lmforge.data.templates.template import Segment, Template
from lmforge.data.templates.tool_formats import TOOL_FORMATS
from lmforge.errors import TemplateError

__all__ = ["JinjaTemplate", "auto_template", "compare_with_tokenizer", "family_template", "render_jinja",
           "resolve_template",
           "template_from_tokenizer"]

PROBE = [Message("system", "You are a careful assistant."), Message("user", "What is 2+2?"),
         Message("assistant", "4."), Message("user", "And 3+3?"), Message("assistant", "6.")]
PROBE_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
PROBE_WITH_TOOLS = [Message("user", "Weather in Paris?"),
                    Message("assistant", "", (ToolCall("get_weather", {"city": "Paris"}),)),
                    Message("tool", '{"temperature": 21}'), Message("assistant", "21 degrees.")]
# Marker tokens of chat formats: what tells one family from another
_MARKERS = re.compile(r"<\|[^|\s<>]+\|>|<｜[^｜]+｜>|<\|[a-z_]+>|<[a-z_]+\|>|\[/?[A-Z_]+\]|</?[a-z_]+>|\[[a-z]~\[")

_NINE_CHARACTER_IDS = re.compile(r"\|\s*length\s*[!=]=\s*9\b")


@dataclass(frozen=True)
class JinjaTemplate(Template):
    """`template: auto`: the tokenizer's own jinja template (`chat_template`), read as `style` says."""

    chat_template: str = ""
    style: JinjaStyle = field(default_factory=JinjaStyle)
    preserve_thinking: bool = False  # earlier answers keep their thoughts (`preserve_thinking`)
    answer_end: str = ""  # the end-of-turn a template writes only in history (Apertus), trained with every answer

    @property
    def can_render_tools(self) -> bool:
        return "tool" in self.chat_template

    @functools.cached_property
    def call_id_style(self) -> str:
        """Mistral's templates raise on a call id that is not 9 characters (`|length != 9`): given ids of another
        shape are replaced for them; other templates write the ids a conversation gives."""
        return "alnum9" if _NINE_CHARACTER_IDS.search(self.chat_template) else "given"

    def preserving_thinking(self) -> "JinjaTemplate":
        return replace(self, preserve_thinking=True)

    def _renderer(self, tools: list[dict[str, Any]] | None, thinking: Thinking | None, bos: str, eos: str) -> Render:
        variables: dict[str, Any] = {}
        if thinking in ("true", "false"):
            variables["enable_thinking"] = thinking == "true"
        if self.preserve_thinking and self.style.reads_preserve_thinking:
            variables.update(dict.fromkeys(PRESERVE_VARIABLES, True))

        def render(messages: list[Message], generation: bool) -> str:
            return render_jinja(self.chat_template, messages, tools=tools, add_generation_prompt=generation,
                                bos_token=bos, eos_token=eos, style=self.style, **variables)

        return render

    def _messages(self, messages: list[Message], system: str | None, thinking: Thinking | None) -> list[Message]:
        if system is not None and not (messages and messages[0].role == "system"):
            messages = [Message("system", system), *messages]
        if thinking == "false":  # thoughts are not trained with thinking off
            messages = [replace(m, content=split_thought(m.content, *THOUGHT_WORDS)[1]) if m.role == "assistant"
                        else m for m in messages]
        if any(m.tool_calls or m.role == "tool" for m in messages):  # Mistral's templates require call ids
            messages = assign_tool_call_ids(messages, self.call_id_style)
        return messages

    def examples(self, messages: list[Message], *, system: str | None = None,
                 tools: list[dict[str, Any]] | None = None, enable_thinking: Thinking | None = None,
                 bos_token: str = "", eos_token: str = "", train: bool = False,
                 date: datetime.date | None = None, mask_history: bool = False) -> list[list[Segment]]:
        """The training examples of one conversation (see `jinja_turns`); `mask_history`: one, the last answer
        supervised in its own context. `date`: the template reads the clock itself (`strftime_now`)."""
        messages = self._messages(messages, system, enable_thinking)
        render = self._renderer(tools, enable_thinking, bos_token, eos_token)
        by_message = compute_turns(render, messages, eos_token, self.answer_end)
        if tools or any(m.tool_calls for m in messages):
            _check_tools_written(render, messages, tools, by_message)
        turns = list(by_message.values())
        if not turns:
            return [[Segment(render(messages, False), False)]]
        end = eos_token if train and self.efficient_eos else ""
        if mask_history:
            return [example_segments([turns[-1]], end)]
        if self.preserve_thinking and not self.style.reads_preserve_thinking:
            turns = stitch_turns(turns)
            return [example_segments(turns, end)]
        return [example_segments(group, end) for group in group_turns(turns)]

    def render(self, messages: list[Message], *, system: str | None = None,
               tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = False,
               enable_thinking: Thinking | None = None, bos_token: str = "", eos_token: str = "",
               train: bool = False, date: datetime.date | None = None) -> list[Segment]:
        """With a generation prompt: `apply_chat_template`'s text, unsupervised. Otherwise the example of the
        last answer: it in its generation-time context, with the earlier answers that context holds as generated."""
        if add_generation_prompt:
            render = self._renderer(tools, enable_thinking, bos_token, eos_token)
            text = render(self._messages(messages, system, enable_thinking), True)
            _check_definitions_written(text, tools)
            return [Segment(text, False)]
        return self.examples(messages, system=system, tools=tools, enable_thinking=enable_thinking,
                             bos_token=bos_token, eos_token=eos_token, train=train)[-1]


def _check_tools_written(render: Render, messages: list[Message], tools: list[dict[str, Any]] | None,
                         turns: dict[int, Turn]) -> None:
    """The template must write the data's tool definitions and calls: one without tool support drops them
    without a word (SmolLM2's renders an answer made of calls as an empty turn)."""
    for index, turn in turns.items():
        for call in messages[index].tool_calls:
            if not writes_calls(turn.answer, (call,)):
                raise TemplateError(f"the model's chat template does not write message {index + 1}'s call of "
                                    f"`{call.name}` in its answer (the answer renders as "
                                    f"{turn.answer.strip()[:80]!r}); train with a template that writes it "
                                    "(`template: NAME`, `lmforge template list`)")
    _check_definitions_written(render(messages, False), tools)


def _check_definitions_written(text: str, tools: list[dict[str, Any]] | None) -> None:
    """Each tool's name is in the rendering: a template without tool support leaves the model blind to them."""
    for name in (tool["function"]["name"] for tool in normalize_tools(tools) or []):
        if name not in text:
            raise TemplateError(f"the model's chat template does not write tool definitions (`{name}` is not in "
                                "the rendered conversation); use a template that writes them "
                                "(`template: NAME`, `lmforge template list`)")


def _end_words(chat_template: str, style: JinjaStyle, bos: str, eos: str) -> tuple[str, str]:
    """(the end-of-turn the template writes after an answer's content, the one it writes only in history)."""
    question, answer = Message("user", "QUESTIONTEXT"), Message("assistant", PROBE_ANSWER)
    for messages, tools in (([question, answer], None), ([*PROBE_WITH_TOOLS[:-1], answer], PROBE_TOOLS)):
        def render(shown: list[Message], generation: bool, tools: Any = tools) -> str:
            return render_jinja(chat_template, shown, tools=tools, add_generation_prompt=generation, bos_token=bos,
                                eos_token=eos, style=style)
        try:
            turn = compute_turns(render, assign_tool_call_ids(messages), eos)[len(messages) - 1]
            if PROBE_ANSWER not in turn.answer:
                continue
            end = turn.answer[turn.answer.rfind(PROBE_ANSWER) + len(PROBE_ANSWER):].strip()
            return end, "" if end else _history_end(render, messages)
        except TemplateError:
            continue
    return "", ""


def _history_end(render: Any, messages: list[Message]) -> str:
    """What the template writes between an answer and the next question, less the question's own opening
    (what it writes before the first question too)."""
    asked = render([*messages, Message("user", "QUESTIONTWO")], False)
    first = render(messages[:-1], False)
    between = asked[asked.rfind(PROBE_ANSWER) + len(PROBE_ANSWER): asked.rfind("QUESTIONTWO")]
    before = first[: first.rfind(messages[-2].content)] if messages[-2].content in first else ""
    common = 0
    while common < min(len(between), len(before)) and between[-1 - common] == before[-1 - common]:
        common += 1
    opening = between[len(between) - common:]
    cut = next((i for i, char in enumerate(opening) if char in "<[" and (i == 0 or opening[i - 1] in ">]\n ")), 0)
    return between[: len(between) - len(opening) + cut].strip()


def _tool_format(chat_template: str, style: JinjaStyle, bos: str, eos: str) -> str:
    """The registered tool format whose calls the jinja writes (so chat parses the model's calls back): the one
    whose rendering of a probe answer (text and a call, else the call alone) the jinja's rendering holds, the
    longest such; of formats writing the same calls (Qwen's, SmolLM3's, Granite 4's), the one whose definitions it
    writes too; `default` when none does."""
    found: list[tuple[int, int, bool, str]] = []
    for rank, text in enumerate(("Let me check.", "")):
        messages = assign_tool_call_ids([PROBE_WITH_TOOLS[0], replace(PROBE_WITH_TOOLS[1], content=text)])
        try:
            rendered = render_jinja(chat_template, messages, tools=PROBE_TOOLS, bos_token=bos, eos_token=eos,
                                    style=style)
        except TemplateError:
            continue
        for name in TOOL_FORMATS.names():
            fmt = TOOL_FORMATS.get(name)
            try:
                written = fmt.join(text, fmt.render_calls(messages[1].tool_calls))
            except Exception:  # a format that needs what the probe has not (numbered ids, a tools list)
                continue
            if fmt.name != "default" and written in rendered and fmt.parse_calls(written):
                found.append((-rank, len(written), fmt.render_tools(PROBE_TOOLS) in rendered, fmt.name))
    return max(found)[3] if found else "default"


def _stop_words(end: str) -> tuple[str, ...]:
    markers = _MARKERS.findall(end)
    return tuple(markers) if "".join(markers) == "".join(end.split()) else tuple(end.split())


def _call_end(chat_template: str, style: JinjaStyle, bos: str, eos: str) -> tuple[str, ...]:
    """The marker ending an answer of tool calls where it is another one (gpt-oss's `<|call|>`)."""
    def render(shown: list[Message], generation: bool) -> str:
        return render_jinja(chat_template, shown, tools=PROBE_TOOLS, add_generation_prompt=generation,
                            bos_token=bos, eos_token=eos, style=style)
    try:
        turn = compute_turns(render, assign_tool_call_ids(PROBE_WITH_TOOLS[:2]), eos)[1]
    except TemplateError:
        return ()
    markers = _MARKERS.findall(turn.answer[-40:])
    return (markers[-1],) if markers and turn.answer.rstrip().endswith(markers[-1]) else ()


def template_from_tokenizer(tokenizer: PreTrainedTokenizerBase) -> JinjaTemplate:
    chat_template = tokenizer.chat_template
    if not isinstance(chat_template, str) or not chat_template:
        raise TemplateError("`template: auto` needs a tokenizer with a `chat_template`; this one has none: set "
                            "`template` to a registered name (`lmforge template list`)")
    return auto_template(chat_template, tokenizer.bos_token or "", tokenizer.eos_token or "")


def auto_template(chat_template: str, bos: str = "", eos: str = "") -> JinjaTemplate:
    """`template: auto` for a jinja template and the tokenizer's bos and eos."""
    style = detect_style(chat_template, bos, eos)
    end, history_end = _end_words(chat_template, style, bos, eos)
    # no end-of-turn after an answer (ChatGLM3, Baichuan 2): training appends eos so the model learns to stop
    stop = tuple(dict.fromkeys((*_stop_words(end or history_end), *_call_end(chat_template, style, bos, eos),
                                *((eos,) if eos else ()))))
    return JinjaTemplate(name="auto", format_user="", format_assistant="", stop_words=stop,
                         efficient_eos=not (end or history_end) and bool(eos), chat_template=chat_template,
                         style=style, answer_end=history_end, tool_format=_tool_format(chat_template, style, bos, eos),
                         description="the tokenizer's own chat template")


def resolve_template(template: Template | None, tokenizer: PreTrainedTokenizerBase) -> Template:
    """The registered template, or (None: `auto`) the tokenizer's own, checked on the probe conversation."""
    if template is not None:
        return template
    auto = template_from_tokenizer(tokenizer)
    tokens = dict(bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "")
    try:
        auto.examples(PROBE[1:], **tokens)
    except TemplateError as err:
        try:  # some templates only render conversations with tools (Hermes 3's tool_use)
            auto.examples(PROBE_WITH_TOOLS, tools=PROBE_TOOLS, **tokens)
        except TemplateError:
            raise TemplateError(f"{err}; {family_advice(tokenizer)}") from None
    return auto


def family_template(chat_template: str, bos: str = "", eos: str = "") -> tuple[str | None, bool]:
    """(the registered template of the jinja's family, whether it renders the jinja's probes identically): one
    rendering them identically (with thoughts too where the jinja writes them), else the one writing the same
    chat markers (`<|im_start|>`, `<start_of_turn>`, ...) and closest in text; None when no registered template
    writes the jinja's markers (a family lmforge has not registered)."""
    style = detect_style(chat_template, bos, eos)
    thoughts = [Message("user", "Name a colour."), Message("assistant", "<think>\nAny.\n</think>\n\nBlue."),
                Message("user", "Another?")]
    probes = [(PROBE[1:4], True)] + ([(thoughts, True)] if re.search(r"think|reasoning", chat_template) else [])
    try:
        theirs = [render_jinja(chat_template, messages, add_generation_prompt=generation, bos_token=bos,
                               eos_token=eos, style=style) for messages, generation in probes]
    except TemplateError:
        return None, False
    def markers_of(text: str) -> set[str]:  # bos and eos are every family's
        return set(_MARKERS.findall(text)) - {bos, eos}

    markers = markers_of(theirs[0])
    best: tuple[float, float, str] | None = None
    # text templates before multimodal ones of the same format (Qwen2's jinja is `qwen2`'s before `qwen2_vl`'s)
    for template in sorted(list_templates(), key=lambda t: (t.multimodal, t.name)):
        try:
            ours = [template.render_text(messages, add_generation_prompt=generation, bos_token=bos, eos_token=eos)
                    for messages, generation in probes]
        except TemplateError:
            continue
        if ours == theirs:
            return template.name, True
        mine = markers_of(ours[0])
        shared = len(markers & mine) / max(len(markers | mine), 1)
        ratio = difflib.SequenceMatcher(None, ours[0], theirs[0]).ratio()
        family = shared >= 0.5 and ratio >= 0.6 if markers else ratio >= 0.9
        if family and (best is None or (shared, ratio) > best[:2]):
            best = (shared, ratio, template.name)
    return (best[2], False) if best else (None, False)


def family_advice(tokenizer: PreTrainedTokenizerBase) -> str:
    """What to set instead of a template that does not fit: one of the jinja's family, or none fits."""
    name, identical = family_template(tokenizer.chat_template or "", tokenizer.bos_token or "",
                                      tokenizer.eos_token or "")
    if identical:
        return f"`template: {name}` renders the tokenizer's chat template identically on lmforge's probes"
    if name:
        return (f"`template: {name}` is of the same family (same chat markers) but renders it differently "
                "(`lmforge template check` shows how)")
    return ("no registered template writes this chat template's markers (none of its family fits; register one "
            "with `lmforge template derive`)")


def compare_with_tokenizer(template: Template, tokenizer: PreTrainedTokenizerBase) -> str | None:
    """A unified diff of the probe rendered by `template` and by the tokenizer's chat template (None: equal)."""
    if isinstance(template, JinjaTemplate) or not isinstance(tokenizer.chat_template, str):
        return None
    tokens = dict(bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "")
    probe = PROBE[1:4]  # a question, an answer, a question: what every template can render
    ours = template.render_text(probe, add_generation_prompt=True, **tokens)
    try:
        theirs = render_jinja(tokenizer.chat_template, probe, add_generation_prompt=True, **tokens)
    except TemplateError as err:
        return str(err)
    if ours == theirs:
        return None
    diff = difflib.unified_diff(theirs.splitlines(keepends=True), ours.splitlines(keepends=True),
                                "tokenizer chat_template", f"template {template.name}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in diff)
