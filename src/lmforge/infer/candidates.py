"""Several answers per prompt: the shapes they come back in and how they are ranked and picked.

Methods (`candidate_method`): `sample` draws n independent answers; `beam` returns the n best beams
of one beam search; `diverse_beam` runs group beam search with a diversity penalty and takes the
best beam of each group first; `diverse_sample` draws n x oversample answers and keeps the n most
likely ones that are not near-duplicates of a better one.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from lmforge.data.templates.messages import Message, ToolCall
from lmforge.infer.diversity import select_diverse
from lmforge.infer.options import GenerationOptions
from lmforge.infer.scoring import Alternatives

FinishReason = Literal["stop", "length", "tool_calls"]


@dataclass(frozen=True)
class Candidate:
    text: str
    token_ids: tuple[int, ...]  # the answer's tokens, end-of-turn and stop string excluded
    finish_reason: FinishReason
    token_logprobs: tuple[float, ...] | None = None  # model log-probability of each answer token
    beam_score: float | None = None  # beam methods: the search's own length-normalised score
    tool_calls: tuple[ToolCall, ...] = ()  # parsed from `text` when the request gave tools
    content: str | None = None  # with tool calls: the text before them
    top_logprobs: tuple[Alternatives, ...] | None = None  # per answer token: the most likely tokens there

    def as_message(self) -> Message:
        """The answer as an assistant turn of the history (its tool calls parsed out)."""
        if self.tool_calls:
            return Message("assistant", self.content or "", self.tool_calls)
        return Message("assistant", self.text)

    @property
    def logprob(self) -> float | None:
        """Log-probability of the whole answer under the model."""
        return sum(self.token_logprobs) if self.token_logprobs is not None else None

    def score(self, length_penalty: float = 1.0) -> float | None:
        """Log-probability / length ** length_penalty: how candidates are ranked."""
        if self.token_logprobs is None:
            return None
        return self.logprob / max(len(self.token_logprobs), 1) ** length_penalty  # type: ignore[operator]


@dataclass(frozen=True)
class StreamDelta:
    index: int  # which candidate this text belongs to
    text: str
    finish_reason: FinishReason | None = None  # set on the candidate's last delta
    tool_calls: tuple[ToolCall, ...] = ()  # with tools: the candidate's parsed calls, on its last delta
    candidate: Candidate | None = None  # on the last delta: the whole answer (its tokens and log-probabilities)


def with_logprobs(candidates: Sequence[Candidate], logprobs: Sequence[Sequence[float]],
                  alternatives: Sequence[Sequence[Alternatives]] | None = None) -> list[Candidate]:
    """The candidates with their token log-probabilities (and, when given, each position's alternatives)."""
    if alternatives is None:
        return [replace(c, token_logprobs=tuple(lp)) for c, lp in zip(candidates, logprobs, strict=True)]
    return [replace(c, token_logprobs=tuple(lp), top_logprobs=tuple(alt))
            for c, lp, alt in zip(candidates, logprobs, alternatives, strict=True)]


def interleave_groups(groups: Sequence[Sequence[Candidate]], n: int) -> list[Candidate]:
    """The best beam of every group, then every group's second best, ...: the first n."""
    picked: list[Candidate] = []
    for rank in range(max((len(group) for group in groups), default=0)):
        picked.extend(group[rank] for group in groups if rank < len(group))
    return picked[:n]


def pick_diverse(candidates: Sequence[Candidate], options: GenerationOptions) -> list[Candidate]:
    """`diverse_sample`: the n best-scored candidates that are not near-duplicates, best first."""
    scores = [c.score(options.length_penalty) or 0.0 for c in candidates]
    kept = select_diverse([c.text for c in candidates], scores, options.n,
                          max_similarity=options.max_similarity, similarity=options.similarity)
    return sorted((candidates[i] for i in kept), key=lambda c: c.score(options.length_penalty) or 0.0, reverse=True)
