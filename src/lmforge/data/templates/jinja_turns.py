"""Supervised turns of a conversation under a model's own jinja template, and the examples they make.

Each assistant turn is trained in the context the template shows the model when it generates that turn:
its prompt is `render(messages[:i], add_generation_prompt=True)`, and its answer is what the template
writes after that prompt for the answer (`render(messages[:i + 1])`), up to and including the end-of-turn
text; what follows (ChatML's newline) is not supervised. Where the rendered answer does not extend the
prompt (the prompt closes or opens a think block), the answer is read off the data (`_prefilled`).

A template whose history differs from the turn being generated (Qwen3 drops earlier thoughts) cannot put
every turn in one sequence; `group_turns` puts each turn in the example of the latest turn whose prompt
already contains it exactly as generated, so a prefix-preserving template gives one example per
conversation and Qwen3 one per answer (docs/templates.md, "template: auto").
"""

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

from lmforge.data.templates.jinja_render import THOUGHT_WORDS
from lmforge.data.templates.messages import Message, ToolCall, split_thought
from lmforge.data.templates.template import Segment
from lmforge.errors import TemplateError

Render = Callable[[list[Message], bool], str]  # (messages, add_generation_prompt) -> text


@dataclass(frozen=True)
class Turn:
    prompt: str  # everything the model sees before it writes this answer
    answer: str  # the answer and its end-of-turn, supervised
    after: str  # what the template writes after the end-of-turn (unsupervised glue)
    trained: bool = True  # False: the data marks the answer not to learn from (`weight: 0`)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def writes_calls(text: str, calls: tuple[ToolCall, ...]) -> bool:
    """Whether `text` writes every call: its function's name, or its id where the format names a call by it
    (Kimi-K2's `functions.NAME:INDEX` ids)."""
    return all(call.name in text or (call.id and call.id in text) for call in calls)


def _variants(message: Message) -> list[Message]:
    """The answer as the data has it; without its thought (a prompt that closes the think block: thinking
    off); with an empty thought (a prompt that opens one the data does not fill)."""
    thought, content = split_thought(message.content, *THOUGHT_WORDS)
    if thought is not None:
        return [message, replace(message, content=content)]
    return [message, replace(message, content=f"{THOUGHT_WORDS[0]}\n\n{THOUGHT_WORDS[1]}\n\n{message.content}")]


def _boundary(text: str, position: int) -> int:
    """`position` moved back to just after a marker's end or whitespace, so no marker is split."""
    while position > 0 and text[position - 1] not in ">]}\n ":
        position -= 1
    return position


def _prefilled(prompt: str, render_variant: Callable[[Message], str], message: Message) -> str:
    """The answer after a prompt whose ending the template's rendering of the answer does not have. A prompt
    that opens the data's think block (DeepSeek-R1's `<think>\n`, a template that never writes thoughts):
    the thought after that opening, then the rendered answer. Otherwise (Gemma 4 and DeepSeek V3.2 close an
    empty thought there; Hermes 3 rewrites the end of a last tool result; Gemma 4 continues the turn of an
    answer's calls) the rendered answer without its thought, from its content (or after the prompt's ending)."""
    rendered = render_variant(message)
    start = _boundary(prompt, _common_prefix(prompt, rendered))
    thought, content = split_thought(message.content, *THOUGHT_WORDS)
    block = f"{THOUGHT_WORDS[0]}\n{thought or ''}\n{THOUGHT_WORDS[1]}\n\n"
    prefill, rest = prompt[start:], rendered[start:]
    if prefill.strip() and block.startswith(prefill) and THOUGHT_WORDS[1] not in rest:
        return block[len(prefill):] + rest.lstrip("\n")  # the block ends the thought; R1 keeps its newlines
    if thought is not None:
        rendered = render_variant(replace(message, content=content))
        start = _boundary(prompt, _common_prefix(prompt, rendered))
        prefill, rest = prompt[start:], rendered[start:]
    if not message.tool_calls and content.strip() and content.strip() in rest:  # the answer, from its start
        return rest[rest.index(content.strip()):]
    if prefill and prefill in rest:  # the prompt's ending, written later in the rendering
        return rest[rest.index(prefill) + len(prefill):]
    overlap = next((n for n in range(min(len(prefill), len(rest)), 0, -1) if prefill.endswith(rest[:n])), 0)
    return rest[overlap:]


def _end_of_turn(text: str, content: str, eos: str) -> tuple[str, str]:
    """(answer, after): the answer ends at the tokenizer's eos when one follows the content (Command R7B writes
    the next header after it), else before trailing whitespace."""
    start = text.rfind(content) + len(content) if content.strip() and content in text else 0
    end = text.find(eos, start) if eos else -1
    if end >= 0:
        end += len(eos)
        return text[:end], text[end:]
    answer = text.rstrip()
    return answer, text[len(answer):]


def compute_turns(render: Render, messages: list[Message], eos: str, answer_end: str = "") -> dict[int, Turn]:
    """Each assistant message's turn, by its index. `answer_end`: the end-of-turn of a template that writes it
    only when the conversation goes on (Apertus), added to answers that end without it."""
    turns: dict[int, Turn] = {}
    for index, message in enumerate(messages):
        if message.role != "assistant":
            continue
        prompt = render(messages[:index], True)
        _, content = split_thought(message.content, *THOUGHT_WORDS)
        for variant in _variants(message):
            rendered = render([*messages[:index], variant], False)
            if rendered.startswith(prompt):
                answer, after = _end_of_turn(rendered[len(prompt):], content, eos)
                # a variant that splits the calls from the answer (Nemotron's template writes an answer's
                # content and its calls as two turns) is not what the model generates
                if writes_calls(answer, message.tool_calls):
                    break
        else:
            text = _prefilled(prompt, lambda variant, shown=messages[:index]: render([*shown, variant], False), message)
            answer, after = _end_of_turn(text, content, eos)
        if answer_end and not answer.endswith(answer_end):
            answer, after = answer + answer_end, after.removeprefix(answer_end)
        turns[index] = Turn(prompt, answer, after, message.trained)
    return turns


def group_turns(turns: list[Turn]) -> list[list[Turn]]:
    """Examples, each a list of turns in order: from the last turn back, a turn joins the example of a later
    one when its prompt and answer are exactly the start of that example's text (before the next member)."""
    remaining = list(range(len(turns)))
    groups: list[list[Turn]] = []
    while remaining:
        last = remaining.pop()
        members, limit, text = [last], len(turns[last].prompt), turns[last].prompt
        for index in reversed(list(remaining)):
            turn = turns[index]
            written = turn.prompt + turn.answer
            if len(written) <= limit and text.startswith(written):
                members.insert(0, index)
                remaining.remove(index)
                limit = len(turn.prompt)
        groups.append([turns[i] for i in members])
    return groups[::-1]


def example_segments(group: list[Turn], end_token: str = "") -> list[Segment]:
    """One example's segments: each turn's new prompt text, its answer (+ `end_token`: efficient-eos
    templates), then what the template writes after the last answer."""
    segments, position = [], 0
    for turn in group:
        segments += [Segment(turn.prompt[position:], False),
                     Segment(turn.answer + end_token, True, trained=turn.trained)]
        position = len(turn.prompt) + len(turn.answer)
    segments.append(Segment(group[-1].after, False))
    return [segment for segment in segments if segment.text]


def stitch_turns(turns: list[Turn]) -> list[Turn]:
    """The turns rewritten as one sequence in which earlier answers stay as generated (thoughts included):
    each turn's prompt is the previous answer followed by what the template writes after that answer in
    history (`preserve_thinking` on a template that drops earlier thoughts and has no switch for it)."""
    stitched = [turns[0]] if turns else []
    for before, turn in itertools.pairwise(turns):
        previous = stitched[-1].prompt + stitched[-1].answer
        generated = before.prompt + before.answer
        start = _common_prefix(turn.prompt, generated)
        if start < len(generated):  # history rewrote the answer: it must keep the answer's end
            tail = generated[start:]
            kept = next((n for n in range(len(tail), 0, -1) if turn.prompt.startswith(tail[-n:], start)), 0)
            if not kept:
                raise TemplateError("`preserve_thinking`: the tokenizer's chat template rewrites an earlier answer "
                                    "beyond dropping its thought, so it cannot be kept as generated; unset "
                                    "`preserve_thinking` to train each answer in the template's own context")
            start += kept
        stitched.append(replace(turn, prompt=previous + turn.prompt[start:]))
    return stitched
