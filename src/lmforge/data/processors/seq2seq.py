"""Encoder-decoder examples: the conversation up to the last answer is the encoder's input, the last
answer plus eos is the decoder's target (`labels`). The model builds its decoder inputs from the labels.

Truncation (to `cutoff_len`, each side on its own): the input keeps its end, where the question is;
the target keeps its start. An example whose target is empty is dropped and counted.
"""

from transformers import PreTrainedTokenizerBase

from lmforge.data.conversation import Conversation
from lmforge.data.processors.sft import SftStats
from lmforge.data.templates.encoding import encode_conversation
from lmforge.data.templates.template import Template


def build_seq2seq_example(
    conversation: Conversation, template: Template, tokenizer: PreTrainedTokenizerBase, *, cutoff_len: int
) -> tuple[list[int], list[int], bool]:
    """(input_ids, labels, truncated) for one conversation."""
    encoded = encode_conversation(template, tokenizer, conversation.messages, system=conversation.system)
    if not encoded.turns:
        return [], [], False
    source: list[int] = []
    for prompt, response in encoded.turns[:-1]:
        source += prompt + response
    source += encoded.turns[-1][0]
    target = list(encoded.turns[-1][1])
    if tokenizer.eos_token_id is not None and (not target or target[-1] != tokenizer.eos_token_id):
        target.append(tokenizer.eos_token_id)
    truncated = len(source) > cutoff_len or len(target) > cutoff_len
    return source[-cutoff_len:], target[:cutoff_len], truncated


def tokenize_seq2seq(
    conversations: list[Conversation], template: Template, tokenizer: PreTrainedTokenizerBase, *, cutoff_len: int
) -> tuple[dict[str, list[list[int]]], SftStats]:
    columns: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
    stats = SftStats()
    for conversation in conversations:
        input_ids, labels, truncated = build_seq2seq_example(conversation, template, tokenizer,
                                                             cutoff_len=cutoff_len)
        if not labels:
            stats.dropped_empty.append(conversation.source)
            continue
        stats.rows += 1
        stats.truncated += truncated
        stats.tokens += len(input_ids) + len(labels)
        stats.supervised_tokens += len(labels)
        columns["input_ids"].append(input_ids)
        columns["labels"].append(labels)
    return columns, stats
