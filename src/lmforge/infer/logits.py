"""Per-request logits adjustments for transformers `generate`: OpenAI's presence and frequency penalties,
`logit_bias`, and constrained decoding (`structured`), as `LogitsProcessor`s (generate's public hook).

transformers' own `repetition_penalty` divides a repeated token's logit (CTRL's rule) and counts the
prompt too; OpenAI's penalties subtract a constant per token already in the answer, so they are their
own processor. `logit_bias` goes through transformers' `sequence_bias` (one-token sequences).
"""

from collections.abc import Sequence
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from lmforge.infer.options import GenerationOptions


class AnswerPenalties(LogitsProcessor):
    """OpenAI's penalties: logit -= presence * [token in answer] + frequency * (times in answer).

    Only the answer counts (columns from `answer_start`), as OpenAI and vLLM do; rows of a batch all
    start their answers at the same column (left padding).
    """

    def __init__(self, presence: float, frequency: float, answer_start: int) -> None:
        self.presence, self.frequency, self.answer_start = presence, frequency, answer_start

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        answer = input_ids[:, self.answer_start:]
        if answer.shape[1] == 0:
            return scores
        counts = torch.zeros_like(scores).scatter_add_(1, answer, torch.ones_like(answer, dtype=scores.dtype))
        return scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)


def penalty_kwargs(options: GenerationOptions, answer_start: int) -> dict[str, Any]:
    """`generate` keyword arguments for the penalties and bias that every row of the call shares
    (they are part of the batch key): `sequence_bias` and the answer-penalty processor."""
    kwargs: dict[str, Any] = {}
    if options.logit_bias:
        kwargs["sequence_bias"] = [[[token], float(bias)] for token, bias in options.logit_bias]
    if options.presence_penalty or options.frequency_penalty:
        kwargs["logits_processor"] = LogitsProcessorList(
            [AnswerPenalties(options.presence_penalty, options.frequency_penalty, answer_start)])
    return kwargs


def add_processor(kwargs: dict[str, Any], processor: LogitsProcessor | None) -> dict[str, Any]:
    """`kwargs` with `processor` appended to its `logits_processor` list."""
    if processor is not None:
        kwargs = {**kwargs, "logits_processor": LogitsProcessorList([*kwargs.get("logits_processor", []),
                                                                     processor])}
    return kwargs


def bias_problems(bias: Sequence[tuple[int, float]], vocab_size: int) -> list[str]:
    """Token ids outside the vocabulary, and biases outside OpenAI's -100..100."""
    problems = [f"token {token} is not in the vocabulary (0..{vocab_size - 1})" for token, _ in bias
                if not 0 <= token < vocab_size]
    return problems + [f"bias {value} of token {token} is outside -100..100" for token, value in bias
                       if not -100 <= value <= 100]
