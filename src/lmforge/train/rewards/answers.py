"""Final answers and when two are the same: exact, normalized text, or mathematically equal.

Mathematical equality uses `math-verify` (HuggingFace's maintained verifier: LaTeX, sets, intervals,
symbolic equivalence) when it is installed (`pip install lmforge[rl]`); without it, a numeric fallback
compares the final numbers (integers, decimals, thousands separators, fractions, `\\frac{}{}`, percent)
and otherwise the normalized text, which misses symbolic equivalences such as `\\sqrt{8}` = `2\\sqrt{2}`.
"""

import logging
import re
import string
from fractions import Fraction
from importlib.util import find_spec

HAS_MATH_VERIFY = find_spec("math_verify") is not None

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_GSM8K = re.compile(r"####\s*(.+?)\s*$", re.MULTILINE)
_ANSWER_IS = re.compile(r"answer\s*(?:is|:)\s*\$?([^\n$]+?)\$?\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?%?|-?\.\d+%?")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{([^{}]+)\}\{([^{}]+)\}$")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def without_thought(text: str, close: str = "</think>") -> str:
    """The answer after a closing think tag (the whole text when there is none)."""
    head, sep, tail = text.partition(close)
    return tail if sep else head


def last_boxed(text: str) -> str | None:
    """The content of the last `\\boxed{...}`, braces balanced."""
    starts = [match.end() for match in _BOXED.finditer(text)]
    if not starts:
        return None
    start, depth = starts[-1], 1
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start:index].strip()
    return None


def final_answer(text: str, *, last_number: bool = True) -> str:
    """The part of a worked answer that is its result: the last `\\boxed{}`, a GSM8K `#### x` line, an
    `answer is x` sentence, else (`last_number`) the last number, else the text itself. A reference
    answer is read without `last_number`: `\\sqrt{8}` is its own result."""
    if (boxed := last_boxed(text)) is not None:
        return boxed
    for pattern in (_GSM8K, _ANSWER_IS):
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    numbers = _NUMBER.findall(text) if last_number else []
    return numbers[-1].strip() if numbers else text.strip()


def normalize(text: str) -> str:
    """Lower case, no punctuation, articles or repeated spaces (SQuAD's answer normalization)."""
    text = text.lower()
    text = "".join(char for char in text if char not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def as_number(text: str) -> Fraction | None:
    """`text` as an exact number: 1,234 / -0.5 / 3/4 / \\frac{3}{4} / 50% / $12 (None when it is not one)."""
    text = text.strip().strip("$").replace("\\!", "").replace("\\,", "").replace(" ", "")
    text = text.removeprefix("\\$").removesuffix(".")
    percent = text.endswith("%") or text.endswith("\\%")
    text = text.removesuffix("\\%").removesuffix("%")
    if match := _FRAC.match(text):
        sign, top, bottom = match.groups()
        text = f"{sign}{top}/{bottom}"
    try:
        value = Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return value / 100 if percent else value


def numeric_equal(prediction: str, reference: str) -> bool | None:
    """Whether both final answers are the same number (None: one of them is not a number)."""
    ours, theirs = as_number(final_answer(prediction)), as_number(final_answer(reference, last_number=False))
    if ours is None or theirs is None:
        return None
    return ours == theirs


def math_equal(prediction: str, reference: str) -> bool:
    """Whether a completion's final answer equals the reference mathematically."""
    if HAS_MATH_VERIFY:
        return _verified(prediction, reference)
    same = numeric_equal(prediction, reference)
    if same is not None:
        return same
    return normalize(final_answer(prediction)) == normalize(final_answer(reference, last_number=False))


def _verified(prediction: str, reference: str) -> bool:
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its timeout notes are not the user's concern
    gold_text, answer = final_answer(reference, last_number=False), final_answer(prediction)
    if normalize(answer) == normalize(gold_text):  # the same words (a textual answer math cannot parse)
        return True
    gold = parse(f"${gold_text}$") or parse(gold_text)
    predicted = parse(f"${answer}$") or parse(prediction)
    if not gold or not predicted:
        return bool(numeric_equal(prediction, reference))
    return bool(verify(gold, predicted))
