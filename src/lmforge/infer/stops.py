"""Stop strings and incremental detokenization, shared by every backend.

An answer ends before the first stop string. While streaming, text that could still turn into a
stop string (a suffix of the text that is a prefix of one) is held back until it cannot.
"""

import re
from collections.abc import Collection, Sequence
from functools import lru_cache

from transformers import PreTrainedTokenizerBase


def first_stop(text: str, stops: Sequence[str]) -> int | None:
    """Index where the earliest stop string starts in `text`, or None."""
    hits = [index for stop in stops if stop and (index := text.find(stop)) >= 0]
    return min(hits) if hits else None


def held_back(text: str, stops: Sequence[str]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of a stop string."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:size]):
                longest = size
                break
    return longest


def special_markers(tokenizer: PreTrainedTokenizerBase, markers: Sequence[str]) -> frozenset[int]:
    """Ids of the markers that are one special token, which decoding without special tokens would drop
    (Mistral's `[TOOL_CALLS]`, Llama 4's `<|python_start|>`): answers keep them for the tool parser."""
    kept = set()
    for marker in markers:
        ids = tokenizer.encode(marker, add_special_tokens=False) if marker else []
        if len(ids) == 1 and not tokenizer.decode(ids, skip_special_tokens=True):
            kept.add(ids[0])
    return frozenset(kept)


def special_ids(tokenizer: PreTrainedTokenizerBase) -> frozenset[int]:
    """Every special token's id (bos/eos/pad and the added special tokens), for `skip_special_tokens: false`."""
    added = (index for index, token in tokenizer.added_tokens_decoder.items() if token.special)
    return frozenset((*tokenizer.all_special_ids, *added))


def answer_text(tokenizer: PreTrainedTokenizerBase, token_ids: Sequence[int], keep: Collection[int] = ()) -> str:
    """An answer's text without special tokens, except those in `keep`, written as themselves."""
    if not keep or not any(token in keep for token in token_ids):
        return tokenizer.decode(token_ids, skip_special_tokens=True)
    pieces, run = [], []
    for token in token_ids:
        if token in keep:
            pieces += [tokenizer.decode(run, skip_special_tokens=True), tokenizer.convert_ids_to_tokens(token)]
            run = []
        else:
            run.append(token)
    return "".join([*pieces, tokenizer.decode(run, skip_special_tokens=True)])


class IncrementalDecoder:
    """Turns one answer's tokens into text deltas, cutting at stop strings.

    Decoding the whole answer each time (not token by token) keeps multi-token characters and
    tokenizer spacing right; a trailing U+FFFD means a character is still incomplete.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, stops: Sequence[str], keep: Collection[int] = ()) -> None:
        self.tokenizer = tokenizer
        self.keep = keep  # special tokens the text keeps (`special_markers`)
        self.stops = tuple(stop for stop in stops if stop)
        self.token_ids: list[int] = []
        self.text = ""
        self.emitted = 0
        self.stopped = False  # a stop string was reached
        self._text_after: list[int] = []  # decoded length after each token

    def push(self, token_id: int) -> str:
        """Add a token; returns the text that became safe to show. Ignored after a stop string."""
        if self.stopped:
            return ""
        self.token_ids.append(token_id)
        self.text = answer_text(self.tokenizer, self.token_ids, self.keep)
        self._text_after.append(len(self.text))
        cut = first_stop(self.text, self.stops)
        if cut is not None:
            self.stopped = True
            self.text = self.text[:cut]
            # keep only the tokens whose text lies wholly before the stop string
            kept = sum(1 for length in self._text_after if length <= cut)
            self.token_ids = self.token_ids[:kept]
            return self._emit(len(self.text))
        safe = len(self.text) - held_back(self.text, self.stops)
        if self.text.endswith("\ufffd"):
            safe = min(safe, len(self.text) - 1)
        return self._emit(safe)

    def finish(self) -> str:
        """The rest of the text, once the answer is over."""
        return self._emit(len(self.text))

    def _emit(self, upto: int) -> str:
        if upto <= self.emitted:
            return ""
        delta, self.emitted = self.text[self.emitted:upto], upto
        return delta


@lru_cache(maxsize=1)
def _byte_level_alphabet() -> dict[str, int]:
    """Byte-level BPE's printable stand-in for each byte (GPT-2's table), inverted."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def token_bytes(tokenizer: PreTrainedTokenizerBase, token_id: int) -> bytes:
    """The bytes one token stands for. A token holding part of a character decodes to U+FFFD on its own;
    its bytes then come from the vocabulary entry (byte-level BPE's stand-ins, or a `<0xNN>` byte token)."""
    text = tokenizer.decode([token_id])
    if "\ufffd" not in text:
        return text.encode("utf-8")
    piece = tokenizer.convert_ids_to_tokens(token_id)
    if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):
        return bytes([int(piece[3:5], 16)])
    alphabet = _byte_level_alphabet()
    if piece and all(char in alphabet for char in piece):
        return bytes(alphabet[char] for char in piece)
    return text.encode("utf-8")
