"""Supervised fine-tuning examples: prompt tokens masked out of the loss, answers supervised.

Truncation policy (per example, to `cutoff_len`): assistant turns are kept whole, in order, while
they fit. The first turn that does not fit gets the remaining budget split between its prompt
and answer (the answer gets what the prompt leaves, and at least half); both keep their start.
Later turns are dropped. An example left with no supervised token is dropped and counted, never
silently: the report says how many.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from lmforge.data.conversation import Conversation
from lmforge.data.labels import IGNORE_INDEX
from lmforge.data.processors.located import template_errors_name_their_row
from lmforge.data.templates.encoding import Chat, EncodedConversation, encode_conversation, iter_encode_examples
from lmforge.data.templates.template import Template, Thinking


@dataclass
class SftStats:
    rows: int = 0
    truncated: int = 0
    dropped_empty: list[str] = field(default_factory=list)
    tokens: int = 0
    supervised_tokens: int = 0
    answers: int = 0
    answers_without_end: int = 0
    split_conversations: int = 0  # conversations trained as more than one example (`template: auto`)
    lengths: list[int] = field(default_factory=list)  # tokens per example before truncation


def build_sft_example(
    conversation: Conversation,
    template: Template,
    tokenizer: PreTrainedTokenizerBase,
    *,
    cutoff_len: int,
    train_on_prompt: bool = False,
    mask_history: bool = False,
    enable_thinking: Thinking | None = None,
) -> tuple[list[int], list[int], bool]:
    """(input_ids, labels, truncated) for one conversation."""
    encoded = encode_conversation(template, tokenizer, conversation.messages, system=conversation.system,
                                  tools=conversation.tools, enable_thinking=enable_thinking, train=True)
    example = example_from_encoded(encoded, cutoff_len=cutoff_len, train_on_prompt=train_on_prompt,
                                   mask_history=mask_history)
    return example.input_ids, example.labels, example.truncated


@dataclass
class SftExample:
    input_ids: list[int]
    labels: list[int]
    truncated: bool
    supervised: int  # supervised token count
    answer_ends: list[int]  # last token id of each supervised answer


def example_from_encoded(
    encoded: EncodedConversation, *, cutoff_len: int, train_on_prompt: bool = False, mask_history: bool = False
) -> SftExample:
    """Apply loss masking and the truncation policy to an encoded conversation."""
    input_ids: list[int] = []
    labels: list[int] = []
    truncated = False
    supervised = 0
    answer_ends: list[int] = []
    last = len(encoded.turns) - 1
    for index, (prompt, response) in enumerate(encoded.turns):
        budget = cutoff_len - len(input_ids)
        if len(prompt) + len(response) > budget:
            truncated = True
            if budget <= 1:
                break
            response_len = min(len(response), max(budget - len(prompt), budget // 2))
            prompt, response = prompt[: budget - response_len], response[:response_len]
        supervise = (not mask_history or index == last) and index not in encoded.untrained
        input_ids += prompt + response
        labels += (prompt if train_on_prompt else [IGNORE_INDEX] * len(prompt))
        labels += response if supervise else [IGNORE_INDEX] * len(response)
        supervised += len(prompt) * train_on_prompt + len(response) * supervise
        if supervise and response:
            answer_ends.append(response[-1])
        if truncated:
            break
    if not truncated:
        tail = encoded.tail[: cutoff_len - len(input_ids)]
        input_ids += tail
        labels += [IGNORE_INDEX] * len(tail)
    return SftExample(input_ids, labels, truncated, supervised, answer_ends)


def tokenize_sft(
    conversations: list[Conversation],
    template: Template,
    tokenizer: PreTrainedTokenizerBase,
    *,
    cutoff_len: int,
    train_on_prompt: bool = False,
    mask_history: bool = False,
    end_ids: frozenset[int] = frozenset(),
    enable_thinking: Thinking | None = None,
) -> tuple[dict[str, list[list[int]]], SftStats]:
    """Tokenize with one batched call; `end_ids` are the end-of-turn ids every answer should end with."""
    columns: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    stats = SftStats()
    chats = [Chat(c.messages, c.system, c.tools) for c in conversations]
    with template_errors_name_their_row(template, chats, [c.source for c in conversations], enable_thinking):
        _add_examples(columns, stats, conversations,
                      iter_encode_examples(template, tokenizer, chats, enable_thinking=enable_thinking,
                                           mask_history=mask_history),
                      cutoff_len=cutoff_len, train_on_prompt=train_on_prompt, mask_history=mask_history,
                      end_ids=end_ids)
    return columns, stats


def _add_examples(columns: dict[str, list[list[int]]], stats: SftStats, conversations: list[Conversation],
                  encoded_all: Iterator[list[EncodedConversation]], *, cutoff_len: int, train_on_prompt: bool,
                  mask_history: bool, end_ids: frozenset[int]) -> None:
    for conversation, encoded_examples in zip(conversations, encoded_all, strict=True):
        examples = [example_from_encoded(encoded, cutoff_len=cutoff_len, train_on_prompt=train_on_prompt,
                                         mask_history=mask_history) for encoded in encoded_examples]
        kept = [example for example in examples if example.supervised]
        if not kept:
            stats.dropped_empty.append(conversation.source)
            continue
        stats.split_conversations += len(kept) > 1
        for encoded, example in zip(encoded_examples, examples, strict=True):
            if not example.supervised:
                continue
            stats.lengths.append(sum(len(prompt) + len(response) for prompt, response in encoded.turns)
                                 + len(encoded.tail))
            stats.rows += 1
            stats.truncated += example.truncated
            stats.tokens += len(example.input_ids)
            stats.supervised_tokens += example.supervised
            if not train_on_prompt:
                stats.answers += len(example.answer_ends)
                stats.answers_without_end += sum(end not in end_ids for end in example.answer_ends)
            columns["input_ids"].append(example.input_ids)
            columns["labels"].append(example.labels)
