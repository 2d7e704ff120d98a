"""Near-duplicate detection for candidate answers: word n-gram overlap or edit-distance ratio."""

import re
from collections.abc import Callable, Sequence
from difflib import SequenceMatcher
from typing import Literal


def _ngrams(text: str, size: int) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())  # punctuation and spacing do not make answers different
    if len(words) < size:
        return {tuple(words)} if words else set()
    return {tuple(words[i:i + size]) for i in range(len(words) - size + 1)}


def ngram_similarity(a: str, b: str, size: int = 2) -> float:
    """Jaccard overlap of the word n-grams of `a` and `b` (1 = same n-grams)."""
    grams_a, grams_b = _ngrams(a, size), _ngrams(b, size)
    if not grams_a and not grams_b:
        return 1.0
    return len(grams_a & grams_b) / len(grams_a | grams_b)


def edit_similarity(a: str, b: str) -> float:
    """1 - normalised character edit distance, as difflib's ratio (1 = identical)."""
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


SIMILARITIES: dict[str, Callable[[str, str], float]] = {"ngram": ngram_similarity, "edit": edit_similarity}


def select_diverse(texts: Sequence[str], scores: Sequence[float], n: int, *,
                   max_similarity: float, similarity: Literal["ngram", "edit"] = "ngram") -> list[int]:
    """Indices of up to `n` texts, best score first, skipping any too similar to one already kept.

    When fewer than `n` texts are distinct enough, the rest are filled with the least similar
    leftovers, so the caller always gets min(n, len(texts)) answers.
    """
    similar = SIMILARITIES[similarity]
    order = sorted(range(len(texts)), key=lambda i: scores[i], reverse=True)
    kept: list[int] = []
    leftovers: list[tuple[float, int]] = []
    for index in order:
        closest = max((similar(texts[index], texts[k]) for k in kept), default=0.0)
        if len(kept) < n and closest <= max_similarity:
            kept.append(index)
        else:
            leftovers.append((closest, index))
    for _, index in sorted(leftovers)[: max(0, n - len(kept))]:
        kept.append(index)
    return kept
