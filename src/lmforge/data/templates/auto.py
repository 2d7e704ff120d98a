"""Templates from a tokenizer's own jinja `chat_template`: `template: auto`, cross-checks and `derive`.

`auto` renders with the tokenizer's jinja and finds prompt/answer boundaries by rendering prefixes
of the conversation: the text a prefix adds is the prompt, the text the answer adds is supervised
(trailing whitespace glue excluded). That only works when every rendering of a prefix is a prefix of
the next rendering; it is checked on every conversation, and a template that is not
prefix-preserving (Qwen3 drops history thoughts, for instance) fails with the registered template
to use instead.
"""

import datetime
import difflib
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase
from transformers.utils.chat_template_utils import render_jinja_template

from lmforge.data.templates.messages import Message, Thinking, ToolCall
from lmforge.data.templates.registry import list_templates
from lmforge.data.templates.template import Segment, Template
from lmforge.errors import TemplateError

PROBE = [Message("system", "You are a careful assistant."), Message("user", "What is 2+2?"),
         Message("assistant", "4."), Message("user", "And 3+3?"), Message("assistant", "6.")]
PROBE_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
PROBE_WITH_TOOLS = [Message("user", "Weather in Paris?"),
                    Message("assistant", "", (ToolCall("get_weather", {"city": "Paris"}),)),
                    Message("tool", '{"temperature": 21}'), Message("assistant", "21 degrees.")]


def render_jinja(chat_template: str, messages: list[Message], *, tools: list[dict[str, Any]] | None = None,
                 add_generation_prompt: bool = False, bos_token: str = "", eos_token: str = "") -> str:
    try:
        rendered = render_jinja_template([[m.as_openai() for m in messages]], tools=tools,
                                         chat_template=chat_template, add_generation_prompt=add_generation_prompt,
                                         bos_token=bos_token, eos_token=eos_token)
    except Exception as err:  # jinja raises TemplateError, but templates also fail with KeyError, TypeError, ...
        raise TemplateError(f"the tokenizer's chat template cannot render this conversation: {err}") from None
    return rendered[0][0]


def closest_registered(rendered: str, render: Any) -> str:
    """The registered template whose rendering of the probe is closest to `rendered`."""
    best, best_key = "chatml", (-1.0, False, False)
    for template in list_templates():
        try:
            ratio = difflib.SequenceMatcher(None, render(template), rendered).ratio()
        except TemplateError:
            continue
        # equally close: a proven text template before a vision model's sibling of it (Qwen3 before MiniCPM-V 4.5)
        key = (ratio, bool(template.reference), not template.multimodal)
        if key > best_key:
            best, best_key = template.name, key
    return best


@dataclass(frozen=True)
class JinjaTemplate(Template):
    """`template: auto`: the tokenizer's own jinja template, split into segments by rendering prefixes."""

    chat_template: str = ""

    @property
    def can_render_tools(self) -> bool:
        return "tool" in self.chat_template

    def render(self, messages: list[Message], *, system: str | None = None,
               tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = False,
               enable_thinking: Thinking | None = None, bos_token: str = "", eos_token: str = "",
               train: bool = False, date: datetime.date | None = None) -> list[Segment]:
        # `date`: the tokenizer's own template reads the clock itself (transformers' strftime_now)
        if system is not None and not (messages and messages[0].role == "system"):
            messages = [Message("system", system), *messages]

        def render(upto: int, generation: bool) -> str:
            return render_jinja(self.chat_template, messages[:upto], tools=tools, add_generation_prompt=generation,
                                bos_token=bos_token, eos_token=eos_token)

        segments: list[Segment] = []
        done = ""
        for index, message in enumerate(messages):
            if message.role != "assistant":
                continue
            prompt, full = render(index, True), render(index + 1, False)
            self._check_prefix(done, prompt, "the prompt before answer", index)
            self._check_prefix(prompt, full, "the answer", index)
            answer = full[len(prompt):]
            glue = answer[len(answer.rstrip()):]
            segments += [Segment(prompt[len(done):], False), Segment(answer[: len(answer) - len(glue)], True),
                         Segment(glue, False)]
            done = full
        final = render(len(messages), add_generation_prompt)
        self._check_prefix(done, final, "the end of the conversation", len(messages))
        segments.append(Segment(final[len(done):], False))
        return [segment for segment in segments if segment.text]

    def _check_prefix(self, before: str, after: str, what: str, index: int) -> None:
        if not after.startswith(before):
            suggestion = closest_registered(render_jinja(self.chat_template, PROBE), lambda t: t.render_text(PROBE))
            raise TemplateError(
                f"the tokenizer's chat template is not prefix-preserving (rendering {what} at message "
                f"{index + 1} rewrites earlier text), so answer boundaries cannot be derived from it; set "
                f"`template: {suggestion}` (the closest registered template) or another from `lmforge template list`")


def template_from_tokenizer(tokenizer: PreTrainedTokenizerBase) -> JinjaTemplate:
    chat_template = tokenizer.chat_template
    if not isinstance(chat_template, str) or not chat_template:
        raise TemplateError("`template: auto` needs a tokenizer with a `chat_template`; this one has none: set "
                            "`template` to a registered name (`lmforge template list`)")
    stop = (tokenizer.eos_token,) if tokenizer.eos_token else ()
    return JinjaTemplate(name="auto", format_user="", format_assistant="", stop_words=stop,
                         chat_template=chat_template, description="the tokenizer's own chat template")


def resolve_template(template: Template | None, tokenizer: PreTrainedTokenizerBase) -> Template:
    """The registered template, or (None: `auto`) the tokenizer's own, checked on the probe conversation."""
    if template is not None:
        return template
    auto = template_from_tokenizer(tokenizer)
    auto.render(PROBE, bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "")
    return auto


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
