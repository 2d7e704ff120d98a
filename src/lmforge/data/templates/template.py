"""A chat template is data: string slots with placeholders, rendered into supervised segments.

Slots may contain `{{content}}` (or `{{content_json}}`, the content as a JSON string), `{{bos_token}}`,
`{{eos_token}}` and `{{date}}` (today, or the `date` given to `render`, written with `date_format`).
Special tokens are written as their text (`<|im_end|>`); the tokenizer recognises them as added tokens.

Rendering a conversation gives a list of `Segment`s. Only the assistant slot (`format_assistant`, or
`format_function` for an answer with tool calls: the answer and its end-of-turn token) is supervised; the
header (`format_generation`) and the glue after an answer (`assistant_suffix`, ChatML's newline after
`<|im_end|>`) are not, so the model learns to stop exactly at its end-of-turn token.

Slots, in rendering order (docs/templates.md describes every field): `format_prefix`; `format_system` with the
tool definitions placed by `tools_position` (or in the first question, `system_in_user`); per message `format_user`,
`format_generation` + `format_assistant` + `assistant_suffix`, tool results as `format_observation` around
`format_observation_item`s; then `format_generation` (+ `thought_prefill`) for a generation prompt, else
`format_end`. `<think>` blocks are split off answers and rendered (`format_thought`) by the `enable_thinking`
policy (`Thinking`, in messages.py).
"""

import datetime
import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from lmforge.data.templates.messages import (
    Message,
    Role,
    Thinking,
    ToolCall,
    assign_tool_call_ids,
    normalize_tools,
    split_thought,
)
from lmforge.data.templates.tool_formats import ToolFormat, get_tool_format
from lmforge.errors import TemplateError

__all__ = ["Message", "Role", "Segment", "Template", "Thinking", "ToolCall"]

# Where tool definitions go: appended to the system prompt; at `{{tools}}` in the system slot; or as a
# turn of their own (`format_tools`) before the system turn (Hermes 3), after it (Granite, InternLM2)
# or in front of the last question (Mistral).
ToolsPosition = Literal["system", "in_system", "before_system", "after_system", "before_last_user"]


@dataclass(frozen=True)
class Segment:
    text: str
    supervised: bool  # an answer: its tokens form a turn's response (truncation keeps answers whole)
    trained: bool = field(default=True, kw_only=True)  # False: an answer the data marks not to learn from


@dataclass(frozen=True)
class Template:
    name: str
    format_user: str
    format_assistant: str
    format_generation: str = ""
    format_system: str = ""
    format_prefix: str = ""
    format_prefix_tools: str = ""  # the prefix when tools are given; default format_prefix (gpt-oss)
    assistant_suffix: str = ""
    function_suffix: str | None = None  # that of an answer with tool calls (None: assistant_suffix; Gemma 4: none)
    format_function: str = ""  # assistant slot of an answer with tool calls; default format_assistant
    format_observation: str = ""  # wraps a run of tool results; empty: the template cannot take them
    format_observation_item: str = "{{content}}"
    format_end: str = ""  # after the last message when there is no generation prompt
    # The assistant header right after tool results, of answers and of the generation prompt (which then gets no
    # thought_prefill); None: format_generation. DeepSeek writes none: the model answers straight after the results.
    # `..._calls_after_tools`: that of an answer with tool calls there (None: the above; DeepSeek V3 repeats it).
    format_generation_after_tools: str | None = None
    format_generation_calls_after_tools: str | None = None
    system_in_user: bool = False
    system_always: bool = False  # render the system slot even when the system prompt is empty
    default_system: str = ""
    tool_format: str = "default"
    tools_separator: str = "\n\n"  # between the system prompt and the tool definitions
    tools_separator_always: bool = False  # written even when the system prompt is empty (QwQ)
    tools_first: bool = False  # with tools_position "system": the definitions before the system prompt (Qwen3.5)
    tools_in_first_user: bool = False  # definitions go in front of the first question (Llama 3.1+)
    format_system_tools: str = ""  # the system slot when tools are given; default format_system
    format_system_text: str = "{{content}}"  # a non-empty system prompt inside the system slot (Command R7B)
    format_tools: str = "{{content}}"  # wraps the rendered tool definitions
    tools_position: ToolsPosition = "system"
    tools_always: bool = False  # the tool turn is written even without tools (Hermes 3's tool_use template)
    default_system_tools: str = ""  # the default system prompt when tools are given; default default_system
    date_format: str = "%d %b %Y"  # how `{{date}}` in a default system prompt is written
    observation_separator: str = ""  # between the tool results of one run
    # (written, replacement): an answer followed by more messages ends in `replacement` instead of `written`,
    # unsupervised. Harmony (gpt-oss) ends a final answer with <|return|> and writes it back as <|end|> in the
    # history; the model never generates that <|end|>, so it is not trained.
    end_in_history: tuple[str, str] | None = None
    # The final answer is written after the prompt's `thought_prefill`, as generated (Nemotron opens a think block)
    prefill_final_answer: bool = False
    stop_words: tuple[str, ...] = ()
    # Reasoning families: the think block's words, how a thought is written, and whether thoughts of
    # turns before the last user question stay in the history (Qwen3 drops them).
    thought_words: tuple[str, str] | None = None
    format_thought: str = "<think>\n{{content}}\n</think>\n\n"
    thoughts_in_history: bool = True
    # The family's own template writes an empty think block in front of the final answer and after a
    # generation prompt with thinking off (Qwen3); where the data has no thought it goes to the prompt.
    empty_thought_on_final: bool = False
    empty_thought_after_query: bool = False  # ... before every answer after the last question instead (Qwen3.5)
    # written (and trained) in place of a think block before every answer without a kept thought, history included
    empty_thought: str | None = None  # (GLM-4.5 `\n<think></think>`, GLM-4.7 `</think>`, Kimi-K2-Thinking)
    thought_prefill: str = ""  # ends every generation prompt (QwQ and DeepSeek-R1 open a think block)
    default_thinking: Thinking = "auto"  # the policy when `enable_thinking` is not set
    strip_content: bool = False
    # No end-of-turn token in the model's format: training appends eos to each answer so the model
    # learns to stop (the rendered text, used for chat, stays the model's own).
    efficient_eos: bool = False
    replace_eos: bool = False  # saved tokenizers get the first stop word as eos (jinja.prepare_saved_tokenizer)
    mm_plugin: str = "base"
    remote_code: bool = False  # its model and processor are the checkpoint's own code (`trust_remote_code: true`)
    reference: str | None = None  # refdata chat_templates/*.jinja this template is proven equal to
    # further refdata templates of the family it renders identically (Llama 3.1 and 3.3 for llama3_2)
    family_references: tuple[str, ...] = ()
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    @property
    def multimodal(self) -> bool:
        """Made for vision/audio-language models: it names a multimodal plugin."""
        return self.mm_plugin != "base"

    @property
    def references(self) -> tuple[str, ...]:
        return ((self.reference,) if self.reference else ()) + self.family_references

    @property
    def tools(self) -> ToolFormat:
        return get_tool_format(self.tool_format)

    @property
    def can_render_tools(self) -> bool:
        return bool(self.format_observation)

    def with_tool_format(self, tool_format: str | None) -> "Template":
        """This template with another tool format (the `tool_format` config key)."""
        if not tool_format or tool_format == self.tool_format:
            return self
        get_tool_format(tool_format)
        return replace(self, tool_format=tool_format)

    def with_call_ids(self, messages: list[Message]) -> list[Message]:
        """The messages with the tool-call ids this template's tool format writes (none: unchanged)."""
        style = self.tools.call_ids
        if not style or not any(m.tool_calls or m.role == "tool" for m in messages):
            return messages
        return assign_tool_call_ids(messages, style)

    def default_system_for(self, tools: bool, date: datetime.date | None = None) -> str:
        """The default system prompt, `{{date}}` filled with `date` (default: today, as the model's template)."""
        text = self.default_system_tools if tools and self.default_system_tools else self.default_system
        if "{{date}}" in text:
            text = text.replace("{{date}}", (date or datetime.date.today()).strftime(self.date_format))
        return text

    def render(self, messages: list[Message], *, system: str | None = None,
               tools: list[dict[str, Any]] | None = None, add_generation_prompt: bool = False,
               enable_thinking: Thinking | None = None, bos_token: str = "", eos_token: str = "",
               train: bool = False, date: datetime.date | None = None) -> list[Segment]:
        """Segments of the whole conversation, in order. A leading system message overrides `system`.

        `train` appends eos to answers of `efficient_eos` templates (what is trained, not what is shown);
        `date` fills `{{date}}` in a default system prompt (default: today).
        """
        return _Rendering(self, messages, system=system, tools=tools, add_generation_prompt=add_generation_prompt,
                          thinking=enable_thinking, bos=bos_token, eos=eos_token, train=train,
                          date=date).segments()

    def examples(self, messages: list[Message], *, mask_history: bool = False, **kwargs: Any) -> list[list[Segment]]:
        """The training examples of a conversation: its rendering (`mask_history` is applied by the caller)."""
        return [self.render(messages, **kwargs)]

    def preserving_thinking(self) -> "Template":
        return replace(self, thoughts_in_history=True) if self.thought_words else self

    def header(self, *, after_tools: bool, calls: bool) -> str:
        """The assistant header of an answer (with tool calls or not), or of the generation prompt."""
        if not after_tools or self.format_generation_after_tools is None:
            return self.format_generation
        if calls and self.format_generation_calls_after_tools is not None:
            return self.format_generation_calls_after_tools
        return self.format_generation_after_tools

    def render_text(self, messages: list[Message], **kwargs: Any) -> str:
        return "".join(segment.text for segment in self.render(messages, **kwargs))


class _Rendering:
    """One `Template.render` call, phase by phase as it writes: `place_tools`; `head` (prefix, system turn, a
    tool turn around it); each turn (`user`; `assistant` with its `thought`, calls and end-of-turn rule; `tool`
    results, one turn by `flush_results`; `later_system`); `generation_prompt` (else `format_end`)."""

    def __init__(self, template: Template, messages: list[Message], *, system: str | None,
                 tools: list[dict[str, Any]] | None, add_generation_prompt: bool, thinking: Thinking | None,
                 bos: str, eos: str, train: bool, date: datetime.date | None) -> None:
        t = self.t = template
        if messages and messages[0].role == "system":
            system, messages = messages[0].content, messages[1:]
        self.tools = normalize_tools(tools)
        self.system = system if system is not None else t.default_system_for(bool(self.tools), date)
        self.messages = t.with_call_ids(messages)
        self.thinking = thinking or t.default_thinking
        self.add_generation_prompt, self.bos, self.eos, self.train, self.date = (
            add_generation_prompt, bos, eos, train, date)
        self.last_query = max((i for i, m in enumerate(self.messages) if m.role == "user"), default=-1)
        self.out: list[Segment] = []
        self.tools_in_question = ""  # tool definitions that open the first question (tools_in_first_user)
        self.tool_turn = ""  # tool definitions as a turn of their own
        self.pending_system = ""  # the system slot that opens the first question (system_in_user)
        self.observations: list[str] = []  # the current run of tool results
        self.unanswered: list[ToolCall] = []  # calls of the last answer that no result has answered yet

    def fill(self, slot: str, content: str = "", strip: bool | None = None) -> str:
        """`slot` with its placeholders filled; `content` stripped by `strip` (default: `strip_content`)."""
        if self.t.strip_content if strip is None else strip:
            content = content.strip()
        slot = slot.replace("{{bos_token}}", self.bos).replace("{{eos_token}}", self.eos)
        if "{{date}}" in slot:
            slot = slot.replace("{{date}}", (self.date or datetime.date.today()).strftime(self.t.date_format))
        if "{{content_json}}" in slot:  # the content as a JSON string literal (Llama 3.1's tool results)
            slot = slot.replace("{{content_json}}", json.dumps(content, ensure_ascii=False))
        return slot.replace("{{content}}", content)

    def segments(self) -> list[Segment]:
        system_slot, tools_in_slot = self.place_tools()
        self.head(system_slot, tools_in_slot)
        if self.tool_turn and self.t.tools_position == "before_last_user" and self.last_query < 0:
            raise TemplateError(f"template `{self.t.name}` writes tool definitions before the last question; "
                                "the conversation has none")
        for index, message in enumerate(self.messages):
            if message.role != "tool" and self.observations:
                self.flush_results()
            self.turn(index, message)
        if self.observations:
            self.flush_results()
        self.generation_prompt()
        return [segment for segment in self.out if segment.text]

    # -- system prompt and tool definitions ---------------------------------------------------------------
    def place_tools(self) -> tuple[str, bool]:
        """Put the tool definitions where `tools_position` says; the system slot to write, and whether the
        definitions are in it (`{{tools}}`: written then even without a system prompt)."""
        t = self.t
        tool_text = self.fill(t.format_tools, t.tools.render_tools(self.tools), False) if (
            self.tools or t.tools_always) else ""
        if tool_text and t.tools_in_first_user:
            if not any(m.role == "user" for m in self.messages):
                raise TemplateError(f"template `{t.name}` writes tool definitions into the first question; "
                                    "the conversation has none")
            self.tools_in_question = tool_text
        elif tool_text and t.tools_position == "system":
            parts = (tool_text, self.system) if t.tools_first else (self.system, tool_text)
            self.system = t.tools_separator.join(parts) if self.system or t.tools_separator_always else tool_text
        elif tool_text:
            self.tool_turn = tool_text
        system_slot = t.format_system_tools if self.tools and t.format_system_tools else t.format_system
        tools_in_slot = t.tools_position == "in_system" and bool(self.tool_turn)
        if t.tools_position == "in_system":
            system_slot, self.tool_turn = system_slot.replace("{{tools}}", self.tool_turn), ""
        return system_slot, tools_in_slot

    def head(self, system_slot: str, tools_in_slot: bool) -> None:
        """The prefix, the system turn (`system_in_user`: kept for the first question), a tool turn around it."""
        t = self.t
        prefix = t.format_prefix_tools if self.tools and t.format_prefix_tools else t.format_prefix
        self.out.append(Segment(self.fill(prefix), False))
        if t.tools_position == "before_system":
            self.out.append(Segment(self.tool_turn, False))
        if self.system or t.system_always or tools_in_slot:
            if t.system_in_user:
                text = self.fill(t.format_system_text, self.system, False) if self.system else ""
                self.pending_system = self.fill(system_slot, text, strip=False)
            elif system_slot:
                text = self.fill(t.format_system_text, self.system) if self.system else ""
                self.out.append(Segment(self.fill(system_slot, text, False), False))
            else:
                raise TemplateError(f"template `{t.name}` has no system slot; remove the system prompt")
        if t.tools_position == "after_system":
            self.out.append(Segment(self.tool_turn, False))

    # -- turns --------------------------------------------------------------------------------------------
    def turn(self, index: int, message: Message) -> None:
        if message.role == "user":
            self.user(index, message)
        elif message.role == "assistant":
            self.assistant(index, message)
        elif message.role == "tool":
            self.tool(message)
        elif message.role == "system" and self.t.format_system and not self.t.system_in_user:
            self.later_system(message)
        else:
            raise TemplateError(f"template `{self.t.name}` cannot render a `{message.role}` message here")

    def user(self, index: int, message: Message) -> None:
        """A user turn; the tool turn before the last one, the system slot or definitions opening the first."""
        t = self.t
        if index == self.last_query and t.tools_position == "before_last_user":
            self.out.append(Segment(self.tool_turn, False))
        content = message.content.strip() if t.strip_content else message.content
        text = self.pending_system + self.tools_in_question + content
        self.out.append(Segment(self.fill(t.format_user, text, False), False))
        self.pending_system = self.tools_in_question = ""

    def assistant(self, index: int, message: Message) -> None:
        """Header, [unsupervised empty think block], supervised [thought and] answer with its calls, suffix."""
        t = self.t
        last = index == len(self.messages) - 1
        final = last and not self.add_generation_prompt  # the answer ends the conversation
        header = t.header(after_tools=index > 0 and self.messages[index - 1].role == "tool",
                          calls=bool(message.tool_calls))
        thought, prompt_thought, content = self.thought(message.content, after_query=index > self.last_query,
                                                         last=last)
        text = content.strip() if t.strip_content else content
        if message.tool_calls:
            text = t.tools.join(text, t.tools.render_calls(message.tool_calls))
        slot = t.format_function if message.tool_calls and t.format_function else t.format_assistant
        answer = self.fill(slot, text, False)
        if thought is not None:
            empty = thought == "" and t.empty_thought is not None
            answer = (t.empty_thought if empty else self.fill(t.format_thought, thought, False)) + answer
        suffix = self.fill(t.assistant_suffix if t.function_suffix is None or not message.tool_calls
                           else t.function_suffix)
        if t.end_in_history and not final and answer.endswith(t.end_in_history[0]):
            answer = answer.removesuffix(t.end_in_history[0])
            suffix = t.end_in_history[1] + suffix
        if self.train and t.efficient_eos:
            answer += self.eos
        self.out += [Segment(self.fill(header), False), Segment(prompt_thought, False),
                     Segment(answer, True, trained=message.trained), Segment(suffix, False)]
        self.unanswered = list(message.tool_calls)

    def thought(self, content: str, *, after_query: bool, last: bool) -> tuple[str | None, str, str]:
        """By the `enable_thinking` policy: the thought trained with the answer (None: none), the unsupervised
        text written before it, and the answer without its thought."""
        t = self.t
        prompt_thought, thought = "", None
        if t.thought_words:
            thought, content = split_thought(content, *t.thought_words)
            keep = last if t.prefill_final_answer else after_query or t.thoughts_in_history
            if self.thinking == "false" or not keep:
                thought = None
            if t.empty_thought_on_final:  # Qwen3: an empty block before the final answer (Qwen3.5: any after the query)
                where = after_query if t.empty_thought_after_query else last
                if thought == "" and not where:
                    thought = None  # its template writes an explicit empty block only there
                if keep and thought is None and where:
                    if self.thinking == "true":
                        thought = ""
                    else:  # written where the family's template writes it, but never trained
                        prompt_thought = self.fill(t.format_thought, "", False)
            elif ((keep and self.thinking == "true") or t.empty_thought is not None) and thought is None:
                thought = ""  # asked for, or the template's: every answer opens a think block
        if t.prefill_final_answer and last:  # the generation prompt's prefill, unsupervised
            prompt_thought = t.thought_prefill
        return thought, prompt_thought, content

    def tool(self, message: Message) -> None:
        t = self.t
        if not t.can_render_tools:
            raise TemplateError(f"template `{t.name}` has no slot for tool results")
        item = t.format_observation_item.replace("{{call_id}}", message.tool_call_id)
        if "{{call_name}}" in item:
            item = item.replace("{{call_name}}", self.answered_call(message).name)
        self.observations.append(self.fill(item, message.content, False))

    def answered_call(self, message: Message) -> ToolCall:
        """The call a tool result answers (and removes from `unanswered`): the one with its `tool_call_id`,
        else the next unanswered call of the answer before it (as `assign_tool_call_ids` pairs them)."""
        matches = [call for call in self.unanswered if call.id and call.id == message.tool_call_id]
        if not matches and not self.unanswered:
            raise TemplateError(f"template `{self.t.name}` names the call each tool result answers; a tool result "
                                "follows no unanswered tool call of the answer before it")
        call = (matches or self.unanswered)[0]
        self.unanswered.remove(call)
        return call

    def flush_results(self) -> None:
        """A run of tool results as one observation turn."""
        text = self.t.observation_separator.join(self.observations)
        self.out.append(Segment(self.fill(self.t.format_observation, text, False), False))
        self.observations.clear()

    def later_system(self, message: Message) -> None:
        self.out.append(Segment(self.fill(self.t.format_system.replace("{{tools}}", ""), message.content), False))

    # -- the ending ---------------------------------------------------------------------------------------
    def generation_prompt(self) -> None:
        """The generation prompt (header, thought prefill, an empty block with thinking off), else `format_end`."""
        t = self.t
        if not self.add_generation_prompt:
            self.out.append(Segment(self.fill(t.format_end), False))
            return
        after_tools = bool(self.messages) and self.messages[-1].role == "tool"
        prefill = "" if after_tools and t.format_generation_after_tools is not None else t.thought_prefill  # own header
        self.out.append(Segment(self.fill(t.header(after_tools=after_tools, calls=False)) + prefill, False))
        if t.empty_thought_on_final and self.thinking == "false":
            self.out.append(Segment(self.fill(t.format_thought, "", False), False))
