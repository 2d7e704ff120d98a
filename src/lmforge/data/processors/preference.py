"""Preference stages (rm, dpo) and KTO: rows -> the tokenized columns trl 1.x works on.

- rm / dpo: `prompt_ids`, `chosen_ids`, `rejected_ids` (answers include their end-of-turn token).
- kto: `prompt_ids`, `completion_ids`, `label`, and `KL_completion_ids`: each prompt paired with the
  next row's completion (a mismatched pair, for KTO's KL reference term).

Prompts are encoded with our template exactly as in SFT. When prompt + the longest answer exceed
`cutoff_len`, answers keep their start and get what the prompt leaves (at least half); the prompt
keeps its end, so the assistant header stays next to the answer.
"""

from dataclasses import dataclass, field

from transformers import PreTrainedTokenizerBase

from lmforge.data.conversation import LabeledConversation, Preference
from lmforge.data.processors.located import template_errors_name_their_row
from lmforge.data.templates.encoding import Chat, EncodedConversation, encode_batch
from lmforge.data.templates.template import Message, Template


@dataclass
class PreferenceStats:
    rows: int = 0
    truncated: int = 0
    tokens: int = 0
    answer_tokens: int = 0
    lengths: list[int] = field(default_factory=list)  # prompt plus longest answer, before truncation


def _prompt_ids(encoded: EncodedConversation) -> list[int]:
    """Everything before the last answer: earlier turns and the last prompt."""
    ids = [token for prompt, response in encoded.turns[:-1] for token in (*prompt, *response)]
    return ids + encoded.turns[-1][0]


def _fit(prompt: list[int], answers: list[list[int]], cutoff_len: int) -> tuple[list[int], list[list[int]], bool]:
    longest = max(map(len, answers))
    if len(prompt) + longest <= cutoff_len:
        return prompt, answers, False
    budget = min(longest, max(cutoff_len - len(prompt), cutoff_len // 2))
    kept = cutoff_len - budget
    return (prompt[-kept:] if kept else []), [answer[:budget] for answer in answers], True


def tokenize_pairwise(
    preferences: list[Preference], template: Template, tokenizer: PreTrainedTokenizerBase, *, cutoff_len: int
) -> tuple[dict[str, list[list[int]]], PreferenceStats]:
    conversations = []
    for pref in preferences:
        conversations.append(Chat([*pref.prompt, Message("assistant", pref.chosen)], pref.system, pref.tools))
        conversations.append(Chat([*pref.prompt, Message("assistant", pref.rejected)], pref.system, pref.tools))
    with template_errors_name_their_row(template, conversations, [p.source for p in preferences for _ in "cr"]):
        encoded = encode_batch(template, tokenizer, conversations, train=True)
    columns: dict[str, list[list[int]]] = {"prompt_ids": [], "chosen_ids": [], "rejected_ids": []}
    stats = PreferenceStats()
    for chosen_enc, rejected_enc in zip(encoded[::2], encoded[1::2], strict=True):
        prompt, (chosen, rejected), truncated = _fit(
            _prompt_ids(chosen_enc), [chosen_enc.turns[-1][1], rejected_enc.turns[-1][1]], cutoff_len)
        stats.lengths.append(len(_prompt_ids(chosen_enc)) + max(len(chosen_enc.turns[-1][1]),
                                                                len(rejected_enc.turns[-1][1])))
        columns["prompt_ids"].append(prompt)
        columns["chosen_ids"].append(chosen)
        columns["rejected_ids"].append(rejected)
        stats.rows += 1
        stats.truncated += truncated
        stats.tokens += len(prompt) + len(chosen) + len(rejected)
        stats.answer_tokens += len(chosen) + len(rejected)
    return columns, stats


def tokenize_kto(
    items: list[LabeledConversation], template: Template, tokenizer: PreTrainedTokenizerBase, *, cutoff_len: int
) -> tuple[dict[str, list], PreferenceStats]:
    chats = [Chat(i.conversation.messages, i.conversation.system, i.conversation.tools) for i in items]
    with template_errors_name_their_row(template, chats, [i.conversation.source for i in items]):
        encoded = encode_batch(template, tokenizer, chats, train=True)
    columns: dict[str, list] = {"prompt_ids": [], "completion_ids": [], "label": [], "KL_completion_ids": []}
    stats = PreferenceStats()
    for item, enc in zip(items, encoded, strict=True):
        prompt, (completion,), truncated = _fit(_prompt_ids(enc), [enc.turns[-1][1]], cutoff_len)
        stats.lengths.append(len(_prompt_ids(enc)) + len(enc.turns[-1][1]))
        columns["prompt_ids"].append(prompt)
        columns["completion_ids"].append(completion)
        columns["label"].append(item.desirable)
        stats.rows += 1
        stats.truncated += truncated
        stats.tokens += len(prompt) + len(completion)
        stats.answer_tokens += len(completion)
    completions = columns["completion_ids"]
    for index, prompt in enumerate(columns["prompt_ids"]):  # KL pairs: this prompt, the next row's completion
        mismatched = completions[(index + 1) % len(completions)]
        columns["KL_completion_ids"].append(mismatched[: max(cutoff_len - len(prompt), 0)])
    return columns, stats

