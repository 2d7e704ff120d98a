"""Token ids of a rendered conversation, split into (prompt, response) pairs for loss masking."""

from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from transformers import PreTrainedTokenizerBase

from lmforge.data.templates.template import Message, Segment, Template, Thinking


@dataclass
class EncodedConversation:
    turns: list[tuple[list[int], list[int]]]  # (prompt ids, supervised response ids) per assistant turn
    tail: list[int]  # unsupervised ids after the last answer (or the whole prompt when there is none)

    def flat(self) -> list[int]:
        ids = [i for prompt, response in self.turns for i in (*prompt, *response)]
        return ids + self.tail


def encode_conversation(
    template: Template,
    tokenizer: PreTrainedTokenizerBase,
    messages: list[Message],
    *,
    system: str | None = None,
    tools: list[dict[str, Any]] | None = None,
    add_generation_prompt: bool = False,
    enable_thinking: Thinking | None = None,
    train: bool = False,
) -> EncodedConversation:
    """`train`: the ids to train on (see `Template.render`); otherwise the model's own rendering."""
    segments = template.render(
        messages,
        system=system,
        tools=tools,
        add_generation_prompt=add_generation_prompt,
        enable_thinking=enable_thinking,
        bos_token=tokenizer.bos_token or "",
        eos_token=tokenizer.eos_token or "",
        train=train,
    )

    if tokenizer.is_fast:
        return _split_by_offsets(segments, tokenizer)
    return _encode_piecewise(segments, tokenizer)


def _split_by_offsets(segments: list[Segment], tokenizer: PreTrainedTokenizerBase) -> EncodedConversation:
    """Tokenize the whole rendering once (the ids the model sees at inference) and give each token to the
    segment its first character is in. Encoding segments one by one would differ wherever a tokenizer
    treats a text start specially (SentencePiece's prefix space) or merges across a boundary."""
    text = "".join(segment.text for segment in segments)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    starts, position = [], 0
    for segment in segments:
        starts.append(position)
        position += len(segment.text)
    turns: list[tuple[list[int], list[int]]] = []
    prompt: list[int] = []
    response: list[int] = []
    for token, (start, _end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
        if segments[bisect_right(starts, start) - 1].supervised:
            response.append(token)
            continue
        if response:
            turns.append((prompt, response))
            prompt, response = [], []
        prompt.append(token)
    if response:
        turns.append((prompt, response))
        prompt = []
    return EncodedConversation(turns=turns, tail=prompt)


def _encode_piecewise(segments: list[Segment], tokenizer: PreTrainedTokenizerBase) -> EncodedConversation:
    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False) if text else []

    turns: list[tuple[list[int], list[int]]] = []
    pending = ""
    for segment in segments:
        if segment.supervised:
            turns.append((encode(pending), encode(segment.text)))
            pending = ""
        else:
            pending += segment.text
    return EncodedConversation(turns=turns, tail=encode(pending))


def stop_token_ids(template: Template, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Ids that end an answer: the template's stop words that are single tokens, then the tokenizer's eos."""
    ids: list[int] = []
    for word in template.stop_words:
        token_ids = tokenizer.encode(word, add_special_tokens=False)
        if len(token_ids) == 1 and token_ids[0] not in ids:
            ids.append(token_ids[0])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids
