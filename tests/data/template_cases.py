"""The conversation battery every template is checked on, and the reference renderer.

A reference is rendered with transformers' own jinja environment (`render_jinja_template`:
trim_blocks, lstrip_blocks, `raise_exception`, `tojson`, `{% generation %}` blocks), plus vLLM's
`from_json` filter (json.loads), which vLLM's tool templates (OLMo 3's) use on call arguments.
"""

import csv
import datetime
import json
import re
from dataclasses import dataclass
from functools import cache

from transformers.utils.chat_template_utils import _compile_jinja_template, render_jinja_template

from lmforge.data.templates import Message, Template
from lmforge.data.templates.messages import ToolCall, split_thought
from lmforge.testing.tiny import family_tokenizer
from tests.refdata import refdata

WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name."},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit."}},
        "required": ["city"]}}}
TIME_TOOL = {"type": "function", "function": {
    "name": "get_time", "description": "Local time of a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name."}},
                   "required": ["city"]}}}
PARIS = ToolCall("get_weather", {"city": "Paris", "unit": "celsius"})
# The day references' `strftime_now` and lmforge's `{{date}}` both render (Granite, Mistral Small, Llama 3.2)
TODAY = datetime.date(2024, 7, 26)
# References rendered with a call's arguments as a JSON string (the OpenAI request shape): vLLM's templates
# are written for it; mistral-common's v7 template takes both shapes, but in transformers' jinja environment
# it HTML-escapes a call whose arguments are a dict: `arguments|tojson|safe` makes them a markupsafe Markup,
# and `'{"name": "' + name + '", "arguments": ' + arguments` then escapes every plain string it is joined
# with (`str + Markup` is `escape(str) + Markup`; the environment's autoescape is off and plays no part).
# DeepSeek's templates concatenate the arguments too, OLMo 3's `from_json` them, and an answer of only calls has
# `content: null` there (DeepSeek-R1's template writes calls only then)
ARGUMENTS_AS_JSON = {"internlm2-chat", "mistral-common-v7", "olmo-3-tool", "deepseek-v3", "deepseek-v3.1",
                     "deepseek-r1-distill-qwen"}
# What the docs table says of a reference rendered that way (scripts/template_docs.py)
ARGUMENTS_AS_JSON_NOTES = {
    "mistral-common-v7": "tool cases rendered with each call's arguments as a JSON string (the OpenAI request "
                         "shape, which the template writes as it is); given dict arguments, transformers' rendering "
                         "of this template HTML-escapes the call around them (`arguments|tojson|safe` is a Markup, "
                         "and `str + Markup` escapes the str: `[TOOL_CALLS][{&#34;name&#34;: ...`): that is what "
                         "`apply_chat_template` gives a model shipping this template, not what it was trained on",
}
# References that take an answer's thought in a field of its own, not as `<think>` in its content: the field
THINKING_FIELD = {"gpt-oss": "thinking", "lfm2.5": "thinking", "kimi-k2-thinking": "reasoning_content"}
# References that read message content only as typed parts (`[{"type": "text", "text": ...}]`), as the processors
# of vision-language models send it; plain string content renders as empty turns there (SmolVLM2)
CONTENT_AS_PARTS = {"smolvlm2"}
# References that name each tool result after the call whose id it carries: they get ids on every call and result,
# as OpenAI-style requests carry them (without ids Gemma 4's lookup matches every call and names each result after
# the answer's last call)
CALL_IDS = {"gemma-4", "gemma-4-e2b"}
# Keyword arguments a reference reads beyond the conversation: Hy3's template ends a conversation's last answer
# with eos only in its training mode (`is_training`), the rendering lmforge trains on
REFERENCE_KWARGS = {"hunyuan-hy3": {"is_training": True}}


@dataclass(frozen=True)
class Case:
    messages: list[Message]
    tools: list[dict] | None = None
    thinking: str | None = None  # None: the template's default policy

    @property
    def kind(self) -> str:
        if self.tools:
            return "tools"
        if self.thinking is not None or any("<think>" in m.content for m in self.messages):
            return "thinking"
        return "plain"

    def prompt_case(self) -> "Case | None":
        """The conversation up to its last answer, for rendering with a generation prompt."""
        if not self.messages or self.messages[-1].role != "assistant":
            return None
        return Case(self.messages[:-1], self.tools, self.thinking)


CASES: dict[str, Case] = {
    "single turn": Case([Message("user", "Hello there!"), Message("assistant", "Hi! How can I help?")]),
    "with system": Case([Message("system", "Be brief."), Message("user", "What is 2+2?"),
                         Message("assistant", "4.")]),
    "multi turn": Case([Message("user", "Name a colour."), Message("assistant", "Blue."),
                        Message("user", "Another one?"), Message("assistant", "Green, like grass.")]),
    "multi turn with system": Case([Message("system", "You answer in French."), Message("user", "Hello"),
                                    Message("assistant", "Bonjour !"), Message("user", "Thanks"),
                                    Message("assistant", "De rien.")]),
    "multi-line content": Case([Message("user", "Line one\nline two"), Message("assistant", "Answer:\n- a\n- b")]),
    "tool call": Case([Message("user", "Weather in Paris?"), Message("assistant", "", (PARIS,)),
                       Message("tool", '{"temperature": 21}'), Message("assistant", "It is 21 °C in Paris.")],
                      tools=[WEATHER_TOOL]),
    "tool calls with system and text": Case(
        [Message("system", "You are a travel agent."), Message("user", "Weather and time in Paris?"),
         Message("assistant", "Let me check.", (PARIS, ToolCall("get_time", {"city": "Paris"}))),
         Message("tool", '{"temperature": 21}'), Message("tool", '{"time": "14:05"}'),
         Message("assistant", "21 °C at 14:05.")],
        tools=[WEATHER_TOOL, TIME_TOOL]),
    "parallel tool calls": Case(
        [Message("user", "Weather and time in Paris?"),
         Message("assistant", "", (PARIS, ToolCall("get_time", {"city": "Paris"}))),
         Message("tool", '{"temperature": 21}'), Message("tool", '{"time": "14:05"}'),
         Message("assistant", "21 °C at 14:05.")],
        tools=[WEATHER_TOOL, TIME_TOOL]),
    "tool calls in turn": Case(
        [Message("user", "Weather where it is noon?"),
         Message("assistant", "", (ToolCall("get_time", {"city": "Paris"}),)),
         Message("tool", '{"time": "12:00"}'), Message("assistant", "", (PARIS,)),
         Message("tool", '{"temperature": 21}'), Message("assistant", "Paris: 21 °C.")],
        tools=[WEATHER_TOOL, TIME_TOOL]),
    "thoughts": Case([Message("user", "Name a colour."),
                      Message("assistant", "<think>\nAny colour will do.\n</think>\n\nBlue."),
                      Message("user", "Another one?"),
                      Message("assistant", "<think>\nNot blue again.\n</think>\n\nGreen.")]),
    "thought then none": Case([Message("user", "Name a colour."),
                               Message("assistant", "<think>\nEasy.\n</think>\n\nBlue."),
                               Message("user", "Another one?"), Message("assistant", "Green.")]),
    "thinking off": Case([Message("user", "Name a colour."), Message("assistant", "Blue.")], thinking="false"),
    "thinking on": Case([Message("user", "Name a colour."), Message("assistant", "Blue.")], thinking="true"),
}


def relevant_cases(template: Template) -> list[str]:
    """Cases that exercise this template: tool cases need its tool slots, thinking cases a reasoning template."""
    return [name for name, case in CASES.items()
            if (case.kind != "tools" or template.can_render_tools)
            and (case.kind != "thinking" or template.thought_words)]


@cache
def reference_index() -> dict[str, dict[str, str]]:
    with open(refdata("chat_templates", "INDEX.tsv"), encoding="utf-8") as handle:
        return {row["name"]: row for row in csv.DictReader(handle, delimiter="\t")}


def reference_tokens(reference: str) -> tuple[str, str]:
    row = reference_index()[reference]
    return row["bos_token"], row["eos_token"]


@cache
def reference_jinja(name: str) -> str:
    return refdata("chat_templates", f"{name}.jinja").read_text(encoding="utf-8")


def _openai(message: Message, arguments_as_json: bool, thinking_field: str = "",
            content_as_parts: bool = False) -> dict:
    out = message.as_openai()
    if content_as_parts and isinstance(out.get("content"), str):
        out["content"] = [{"type": "text", "text": out["content"]}]
    if thinking_field and message.role == "assistant":
        thought, out["content"] = split_thought(message.content, "<think>", "</think>")
        if thought is not None:
            out[thinking_field] = thought
    if arguments_as_json:
        for call in out.get("tool_calls", []):
            call["function"]["arguments"] = json.dumps(call["function"]["arguments"], ensure_ascii=False)
        if message.tool_calls and not message.content:
            out["content"] = None
    return out


_DATED = "{# lmforge parity: strftime_now renders TODAY #}"


def _dated(jinja: str) -> str:
    """The reference, compiled in transformers' own jinja environment, with its `strftime_now` global
    (datetime.now().strftime there) answering for TODAY and vLLM's `from_json` filter. The comment makes it
    a template of its own in transformers' compile cache, so other renderings of the reference keep the real
    clock; both are set on every call because that cache may have evicted and recompiled it since (the
    compiled template looks them up when it renders)."""
    source = _DATED + jinja
    compiled = _compile_jinja_template(source)
    compiled.globals["strftime_now"] = TODAY.strftime
    compiled.environment.filters["from_json"] = json.loads
    return source


def render_reference(jinja: str, case: Case, add_generation_prompt: bool, bos: str, eos: str,
                     arguments_as_json: bool = False, thinking_field: str = "",
                     content_as_parts: bool = False, extra: dict | None = None) -> str:
    """The reference's rendering on TODAY (`strftime_now`, and Llama's `date_string`), with `extra` kwargs."""
    kwargs: dict = {"date_string": TODAY.strftime("%d %b %Y"), **(extra or {})}
    if case.thinking in ("false", "true"):  # "auto": the reference's own default
        kwargs["enable_thinking"] = case.thinking == "true"
    messages = [_openai(m, arguments_as_json, thinking_field, content_as_parts) for m in case.messages]
    rendered = render_jinja_template([messages], tools=case.tools,
                                     chat_template=_dated(jinja), add_generation_prompt=add_generation_prompt,
                                     bos_token=bos, eos_token=eos, **kwargs)
    return rendered[0][0]


def render_ours(template: Template, case: Case, add_generation_prompt: bool, bos: str, eos: str) -> str:
    return template.render_text(case.messages, tools=case.tools, add_generation_prompt=add_generation_prompt,
                                enable_thinking=case.thinking, bos_token=bos, eos_token=eos, date=TODAY)


# <|x|>, <｜x｜>, <x>, </x>, [X], [/X], [|x|]; Gemma 4's half-barred <|turn> / <turn|>; MiniMax's ]~b] / ]~!b[ / [e~[
_SPECIAL = re.compile(r"<\|[^|\s]+?\|>|<｜[^｜]+｜>|</?[A-Za-z_][A-Za-z0-9_:]*>|\[/?[A-Za-z_]+\]|\[\|[a-z]+\|\]"
                      r"|<\|[a-z_]+>|<[a-z_]+\|>|\]~!?b[\]\[]|\[e~\[")


def template_special_tokens(template: Template) -> list[str]:
    """Marker tokens of a template's slots and of its tool calls: what a family's tokenizer has as added tokens."""
    text = " ".join(str(value) for value in vars(template).values() if isinstance(value, str | tuple))
    text += " " + " ".join(template.tools.markers)
    return sorted(set(_SPECIAL.findall(text)))


@cache
def tokenizer_for(template: Template, bos: str, eos: str):
    return family_tokenizer(template_special_tokens(template), bos, eos)
