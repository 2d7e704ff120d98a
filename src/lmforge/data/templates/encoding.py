"""Token ids of a rendered conversation, split into (prompt, response) pairs for loss masking."""

import datetime
import unicodedata
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from tokenizers import Tokenizer, normalizers
from transformers import PreTrainedTokenizerBase

from lmforge.data.templates.template import Message, Segment, Template, Thinking

# Rows per tokenizer call in `iter_encode_batch`: large enough for Rust's parallel encode to pay off,
# small enough that rendering the next chunk overlaps with encoding this one.
ENCODE_CHUNK = 128


@dataclass
class EncodedConversation:
    turns: list[tuple[list[int], list[int]]]  # (prompt ids, supervised response ids) per assistant turn
    tail: list[int]  # unsupervised ids after the last answer (or the whole prompt when there is none)
    untrained: frozenset[int] = frozenset()  # turns whose answer the data marks not to learn from (`weight: 0`)

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
    date: datetime.date | None = None,
) -> EncodedConversation:
    """`train`: the ids to train on (see `Template.render`); otherwise the model's own rendering.
    `date`: the day a dated default system prompt names (default: today)."""
    segments = template.render(
        messages,
        system=system,
        tools=tools,
        add_generation_prompt=add_generation_prompt,
        enable_thinking=enable_thinking,
        bos_token=tokenizer.bos_token or "",
        eos_token=tokenizer.eos_token or "",
        train=train,
        date=date,
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
    return _split_ids(segments, encoded["input_ids"], encoded["offset_mapping"])


def _split_ids(segments: list[Segment], ids: list[int], offsets: list[tuple[int, int]]) -> EncodedConversation:
    """Token ids of one rendering, split into (prompt, response) turns: each token goes to the segment
    its first character is in. Offsets never decrease, so each segment's tokens are one slice, found
    by one bisect per segment (not per token: this runs for every row of a dataset)."""
    token_starts = [start for start, _end in offsets]
    bounds, position = [], 0
    for segment in segments:
        bounds.append(bisect_left(token_starts, position))
        position += len(segment.text)
    return _turns(segments, ids, bounds)


def _split_encoding(segments: list[Segment], encoding: Any) -> EncodedConversation:
    """`_split_ids` for a Rust `Encoding`, asking it for the token at each segment start instead of
    converting every token's offsets to Python (the first token starting at or after the segment start
    is the token holding that character, or the next one when it started earlier)."""
    ids = encoding.ids
    bounds, position, length = [], 0, sum(len(segment.text) for segment in segments)
    for segment in segments:
        if position >= length:
            bounds.append(len(ids))
        else:
            token = encoding.char_to_token(position)
            if token is None:  # a character no token covers (trimmed whitespace): bisect the offsets
                return _split_ids(segments, ids, encoding.offsets)
            bounds.append(token if encoding.token_to_chars(token)[0] >= position else token + 1)
        position += len(segment.text)
    return _turns(segments, ids, bounds)


def _turns(segments: list[Segment], ids: list[int], bounds: list[int]) -> EncodedConversation:
    """(prompt, response) turns from each segment's first token index."""
    bounds = [*bounds, len(ids)]
    turns: list[tuple[list[int], list[int]]] = []
    untrained: set[int] = set()
    prompt: list[int] = []
    response: list[int] = []
    trained = True
    for index, segment in enumerate(segments):
        tokens = ids[bounds[index]:bounds[index + 1]]
        other_answer = segment.supervised and segment.trained != trained  # an answer of the other kind
        if response and (other_answer or (not segment.supervised and tokens)):
            untrained.update(() if trained else [len(turns)])
            turns.append((prompt, response))
            prompt, response = [], []
        if segment.supervised:
            trained = segment.trained if not response else trained
            response += tokens
        else:
            prompt += tokens
    if response:
        untrained.update(() if trained else [len(turns)])
        turns.append((prompt, response))
        prompt = []
    return EncodedConversation(turns=turns, tail=prompt, untrained=frozenset(untrained))


def _encode_piecewise(segments: list[Segment], tokenizer: PreTrainedTokenizerBase) -> EncodedConversation:
    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False) if text else []

    turns: list[tuple[list[int], list[int]]] = []
    untrained: set[int] = set()
    pending = ""
    for segment in segments:
        if segment.supervised:
            untrained.update(() if segment.trained else [len(turns)])
            turns.append((encode(pending), encode(segment.text)))
            pending = ""
        else:
            pending += segment.text
    return EncodedConversation(turns=turns, tail=encode(pending), untrained=frozenset(untrained))


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


def batch_token_ids(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], *, add_special_tokens: bool
) -> list[list[int]]:
    """Token ids of many texts in one call. The Rust backend is called directly when there is one:
    transformers' wrapper adds ~3x on top of it for the same ids (no offsets or masks are needed)."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return [encoding.ids for encoding in backend.encode_batch(texts, add_special_tokens=add_special_tokens)]
    return tokenizer(texts, add_special_tokens=add_special_tokens)["input_ids"]


@dataclass(frozen=True)
class Chat:
    """One conversation to encode in a batch."""

    messages: list[Message]
    system: str | None = None
    tools: list[dict[str, Any]] | None = None


def iter_encode_batch(
    template: Template,
    tokenizer: PreTrainedTokenizerBase,
    chats: Sequence[Chat],
    *,
    add_generation_prompt: bool = False,
    enable_thinking: Thinking | None = None,
    train: bool = False,
) -> Iterator[EncodedConversation]:
    """`encode_conversation` for many conversations, in order, with batched (Rust-parallel) tokenizer calls.

    Each whole rendering is tokenized and split by token offsets exactly as `encode_conversation`
    does, so the ids are identical; the Rust backend is called directly (transformers' wrapper adds
    ~3x on top of it for the same ids). The conversations go in chunks, and the tokenizer (which
    releases the GIL) encodes one chunk in a background thread while this thread renders the next
    and the caller consumes the previous one: the Python work no longer leaves a core idle.
    """
    def render(chat: Chat) -> list[list[Segment]]:
        return [template.render(chat.messages, system=chat.system, tools=chat.tools,
                                add_generation_prompt=add_generation_prompt, enable_thinking=enable_thinking,
                                bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                                train=train)]

    for (encoded,) in _iter_encoded(tokenizer, chats, render):
        yield encoded


def iter_encode_examples(
    template: Template,
    tokenizer: PreTrainedTokenizerBase,
    chats: Sequence[Chat],
    *,
    enable_thinking: Thinking | None = None,
    mask_history: bool = False,
) -> Iterator[list[EncodedConversation]]:
    """The training examples of each conversation (`Template.examples`: one, or with `template: auto` on a
    template that rewrites history, one per group of answers), encoded as `iter_encode_batch` does."""
    def render(chat: Chat) -> list[list[Segment]]:
        return template.examples(chat.messages, system=chat.system, tools=chat.tools, enable_thinking=enable_thinking,
                                 bos_token=tokenizer.bos_token or "", eos_token=tokenizer.eos_token or "",
                                 train=True, mask_history=mask_history)

    yield from _iter_encoded(tokenizer, chats, render)


def _iter_encoded(tokenizer: PreTrainedTokenizerBase, chats: Sequence[Chat],
                  render: Callable[[Chat], list[list[Segment]]]) -> Iterator[list[EncodedConversation]]:
    """Each chat's renderings encoded, chunk by chunk, the next chunk rendered while this one encodes."""
    backend = getattr(tokenizer, "backend_tokenizer", None) if tokenizer.is_fast else None
    if backend is None:
        for chat in chats:
            yield [_encode_piecewise(segments, tokenizer) for segments in render(chat)]
        return

    unnormalized = _without_normalizer(backend) if chats and _unicode_form(backend) else None

    def submit(pool: ThreadPoolExecutor, start: int) -> tuple[list[list[list[Segment]]], Future]:
        renders = [render(chat) for chat in chats[start:start + ENCODE_CHUNK]]
        texts = ["".join(segment.text for segment in segments) for examples in renders for segments in examples]
        return renders, pool.submit(_encode_texts, backend, texts, unnormalized)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lmforge-encode") as pool:
        pending = submit(pool, 0) if chats else None
        for start in range(ENCODE_CHUNK, len(chats) + ENCODE_CHUNK, ENCODE_CHUNK):
            following = submit(pool, start) if start < len(chats) else None
            renders, encodings = pending[0], iter(pending[1].result())
            for examples in renders:
                yield [_split_encoding(segments, next(encodings)) for segments in examples]
            pending = following


_UNICODE_FORMS = {normalizers.NFC: "NFC", normalizers.NFKC: "NFKC", normalizers.NFD: "NFD", normalizers.NFKD: "NFKD"}


def _unicode_form(backend: Any) -> str | None:
    """The Unicode form ("NFC", ...) the backend's normalizer puts text in, when that is all it does."""
    normalizer = backend.normalizer
    return next((name for kind, name in _UNICODE_FORMS.items() if isinstance(normalizer, kind)), None)


def _without_normalizer(backend: Any) -> Any:
    """A private tokenizer that encodes as `backend` does without its normalizer. It shares the model,
    pre-tokenizer, post-processor and decoder (no copy of the vocabulary) and re-adds the added tokens in id
    order; where they would get other ids, it is a full copy. `backend` itself is never changed: another
    thread may be encoding with it."""
    twin = Tokenizer(backend.model)
    twin.pre_tokenizer, twin.post_processor = backend.pre_tokenizer, backend.post_processor
    twin.decoder = backend.decoder
    added = backend.get_added_tokens_decoder()
    for special, run in groupby(sorted(added), key=lambda token_id: added[token_id].special):  # one call per run
        tokens = [added[token_id] for token_id in run]
        if special:
            twin.add_special_tokens(tokens)
        else:
            twin.add_tokens(tokens)
    if {i: str(t) for i, t in twin.get_added_tokens_decoder().items()} != {i: str(t) for i, t in added.items()}:
        twin = Tokenizer.from_str(backend.to_str())
        twin.normalizer = None
    twin.encode_special_tokens = backend.encode_special_tokens
    twin.no_truncation()
    twin.no_padding()
    if backend.truncation:
        twin.enable_truncation(**backend.truncation)
    if backend.padding:
        twin.enable_padding(**backend.padding)
    return twin


def _encode_texts(backend: Any, texts: list[str], unnormalized: Any | None = None) -> list[Any]:
    """`backend.encode_batch(texts)`, skipping a Unicode-form normalizer (Qwen's NFC) when every text is
    already in that form: it would change nothing (same ids, same offsets) and costs a tenth of the
    encode. `unnormalized` is `_without_normalizer(backend)`, made once per `iter_encode_batch` (here
    when not given)."""
    form = _unicode_form(backend)
    if form is None or not all(unicodedata.is_normalized(form, text) for text in texts):
        return backend.encode_batch(texts, add_special_tokens=False)
    return (unnormalized or _without_normalizer(backend)).encode_batch(texts, add_special_tokens=False)


def encode_batch(
    template: Template,
    tokenizer: PreTrainedTokenizerBase,
    chats: Sequence[Chat],
    *,
    add_generation_prompt: bool = False,
    enable_thinking: Thinking | None = None,
    train: bool = False,
) -> list[EncodedConversation]:
    """`iter_encode_batch` as a list."""
    return list(iter_encode_batch(template, tokenizer, chats, add_generation_prompt=add_generation_prompt,
                                  enable_thinking=enable_thinking, train=train))
