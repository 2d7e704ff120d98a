"""Generation options: one request's decoding settings, from the config and per-request overrides."""

from dataclasses import dataclass, fields, replace
from typing import Literal

from lmforge.config.generation_rules import candidate_problems
from lmforge.config.groups import GenerationGroup
from lmforge.errors import ConfigError

CandidateMethod = Literal["sample", "beam", "diverse_beam", "diverse_sample"]
Similarity = Literal["ngram", "edit"]


@dataclass(frozen=True)
class GenerationOptions:
    do_sample: bool = True
    temperature: float = 0.95
    top_p: float = 0.7
    top_k: int = 50
    repetition_penalty: float = 1.0
    length_penalty: float = 1.0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1  # candidates per prompt
    method: CandidateMethod = "sample"
    num_beams: int = 1
    num_beam_groups: int = 1
    diversity_penalty: float = 1.0
    oversample: int = 3  # diverse_sample draws n * oversample answers, then keeps n distinct ones
    max_similarity: float = 0.6
    similarity: Similarity = "ngram"
    # OpenAI's additive penalties on tokens already in the answer: presence once, frequency per occurrence
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias added to its logit)
    json_schema: str | None = None  # constrained decoding: the answer is JSON valid under this schema (JSON text)
    logprobs: int | None = None  # report each answer token's log-probability with this many alternatives
    max_length: int | None = None  # prompt + answer tokens (LLaMA-Factory's `max_length`, when max_new_tokens <= 0)

    @classmethod
    def from_config(cls, gen: GenerationGroup) -> "GenerationOptions":
        return cls(
            do_sample=gen.do_sample, temperature=gen.temperature, top_p=gen.top_p, top_k=gen.top_k,
            repetition_penalty=gen.repetition_penalty, length_penalty=gen.length_penalty,
            max_new_tokens=gen.answer_limit(), max_length=None if gen.max_new_tokens > 0 else gen.max_length,
            stop=tuple(gen.stop_strings or ()), seed=gen.generation_seed,
            n=gen.num_candidates, method=gen.candidate_method, num_beams=gen.num_beams,
            num_beam_groups=gen.num_beam_groups, diversity_penalty=gen.diversity_penalty,
            oversample=gen.candidate_oversample, max_similarity=gen.candidate_max_similarity,
            similarity=gen.candidate_similarity)

    def updated(self, **changes: object) -> "GenerationOptions":
        """A copy with the given fields changed; None values keep the current setting."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown generation option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        changes = {key: value for key, value in changes.items() if value is not None}
        if "stop" in changes:
            stop = changes["stop"]
            changes["stop"] = (stop,) if isinstance(stop, str) else tuple(stop)  # type: ignore[arg-type]
        return replace(self, **changes).checked()  # type: ignore[arg-type]

    def for_prompt(self, prompt_tokens: int) -> "GenerationOptions":
        """These options for a prompt of this many tokens: `max_length` (prompt + answer) as an answer limit,
        at least one token as transformers' `max_length` allows."""
        if self.max_length is None:
            return self
        return replace(self, max_new_tokens=max(1, min(self.max_new_tokens, self.max_length - prompt_tokens)))

    def checked(self) -> "GenerationOptions":
        """Fail on settings that are each valid but do not fit together (same rules as the config)."""
        problems = option_problems(self)
        if problems:
            raise ConfigError("invalid generation options: " + "; ".join(problems))
        return self

    @property
    def batchable(self) -> bool:
        """Plain sampling or greedy rows: these share one left-padded `generate` call with other requests."""
        return self.method == "sample" and self.num_beams == 1 and self.seed is None


def option_problems(options: GenerationOptions) -> list[str]:
    problems = [f"{name} must be at least 1 (got {value})" for name, value in
                (("n", options.n), ("max_new_tokens", options.max_new_tokens)) if value < 1]
    if options.json_schema is not None and (options.method in ("beam", "diverse_beam") or options.num_beams > 1):
        problems.append("constrained decoding (`response_format` json) follows one answer token by token: use "
                        "candidate_method sample or diverse_sample, not beam search")
    return problems + candidate_problems(n=options.n, method=options.method, do_sample=options.do_sample,
                                         num_beams=options.num_beams, num_beam_groups=options.num_beam_groups)
