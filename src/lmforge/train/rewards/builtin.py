"""The builtin rewards: accuracy against a reference column, format, length and repetition.

Each scores one completion at a time from its text; a thought (`<think>...</think>`, or the template's own
thought words) is left out of what accuracy, JSON format and length read.
"""

import json
import re
from collections.abc import Callable
from typing import Any

from lmforge.config.groups import RlGroup
from lmforge.train.rewards import BuiltinReward, RewardContext, RewardFunc, completion_texts, register_reward
from lmforge.train.rewards.answers import math_equal, normalize, without_thought

DEFAULT_THOUGHT = ("<think>", "</think>")
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def _thought_words(ctx: RewardContext) -> tuple[str, str]:
    return ctx.template.thought_words or DEFAULT_THOUGHT


def _accuracy(same: Callable[[str, str], bool]) -> Callable[[RewardContext], RewardFunc]:
    """1.0 when the answer matches the row's reference, 0.0 when not, None for a row without a reference."""
    def make(ctx: RewardContext) -> RewardFunc:
        column, close = ctx.rl.reward_answer_column, _thought_words(ctx)[1]

        def accuracy(completions: list[Any], **columns: Any) -> list[float | None]:
            references = columns[column]
            return [None if reference is None else float(same(without_thought(text, close).strip(), str(reference)))
                    for text, reference in zip(completion_texts(completions), references, strict=True)]

        return accuracy

    return make


def _answer_column(rl: RlGroup) -> tuple[str, ...]:
    return (rl.reward_answer_column,)


def _exact(answer: str, reference: str) -> bool:
    return answer == reference.strip()


def _normalized(answer: str, reference: str) -> bool:
    return normalize(answer) == normalize(reference)


register_reward(BuiltinReward(
    "accuracy", _accuracy(math_equal), "the final answer (\\boxed{}, `#### x`, the last number...) equals the "
    "reference mathematically (math-verify when installed, else numerically)", _answer_column),
    aliases=("accuracy_math",))
register_reward(BuiltinReward("accuracy_exact", _accuracy(_exact), "the answer is the reference, character for "
                              "character (surrounding spaces aside)", _answer_column))
register_reward(BuiltinReward("accuracy_normalized", _accuracy(_normalized), "the answer is the reference up to "
                              "case, punctuation, articles and spacing", _answer_column))


def _format_think(ctx: RewardContext) -> RewardFunc:
    """1.0 for a non-empty thought closed before a non-empty answer. A generation prompt that already opens
    the thought (DeepSeek-R1's) leaves the opening tag out of the completion."""
    opening, closing = _thought_words(ctx)
    opened = opening.strip() in ctx.template.thought_prefill
    start = "" if opened else re.escape(opening.strip())
    pattern = re.compile(rf"^\s*{start}(?P<thought>.*?){re.escape(closing.strip())}\s*(?P<answer>\S.*)$", re.DOTALL)

    def format_think(completions: list[Any], **_: Any) -> list[float | None]:
        scores: list[float | None] = []
        for text in completion_texts(completions):
            match = pattern.match(text)
            scores.append(float(bool(match and match["thought"].strip() and opening.strip() not in match["thought"]
                                     and opening.strip() not in match["answer"])))
        return scores

    return format_think


def _format_json(ctx: RewardContext) -> RewardFunc:
    """1.0 when the answer (a ```json fence allowed) is one JSON object or array."""
    close = _thought_words(ctx)[1]

    def format_json(completions: list[Any], **_: Any) -> list[float | None]:
        scores: list[float | None] = []
        for text in completion_texts(completions):
            answer = without_thought(text, close).strip()
            answer = match[1] if (match := _FENCE.match(answer)) else answer
            try:
                scores.append(float(isinstance(json.loads(answer), dict | list)))
            except ValueError:
                scores.append(0.0)
        return scores

    return format_json


register_reward(BuiltinReward("format_think", _format_think, "a non-empty thought in the template's thought tags "
                              "(`<think>...</think>` by default), then an answer"))
register_reward(BuiltinReward("format_json", _format_json, "the answer parses as a JSON object or array"))


def _needs_length_target(rl: RlGroup) -> str | None:
    if rl.reward_length_target is None:
        return "the `length` reward needs `reward_length_target` (the answer length in words it rewards)"
    return None


def _length(ctx: RewardContext) -> RewardFunc:
    """1 at `reward_length_target` words, falling linearly to 0 at none or twice as many."""
    target, close = ctx.rl.reward_length_target or 1, _thought_words(ctx)[1]

    def length(completions: list[Any], **_: Any) -> list[float | None]:
        return [max(0.0, 1.0 - abs(len(without_thought(text, close).split()) - target) / target)
                for text in completion_texts(completions)]

    return length


def _repetition(ctx: RewardContext) -> RewardFunc:
    """Minus the share of repeated word 3-grams: 0 for none, towards -1 for a text that loops."""
    def repetition(completions: list[Any], **_: Any) -> list[float | None]:
        scores: list[float | None] = []
        for text in completion_texts(completions):
            words = text.split()
            grams = [tuple(words[i:i + 3]) for i in range(len(words) - 2)]
            scores.append(-(1.0 - len(set(grams)) / len(grams)) if grams else 0.0)
        return scores

    return repetition


register_reward(BuiltinReward("length", _length, "closeness to `reward_length_target` words",
                              check=_needs_length_target))
register_reward(BuiltinReward("repetition", _repetition, "a penalty for repeated word 3-grams (0 to -1)"))
