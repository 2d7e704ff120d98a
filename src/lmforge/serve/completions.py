"""`POST /v1/completions`: plain-text prompts continued as they are, without the chat template.

A prompt is the tokenizer's encoding of the text (with the BOS token the tokenizer adds), or token
ids as sent. Several prompts each get `n` choices (choice `i * n + j` is prompt i's answer j), as
OpenAI numbers them. `echo` puts the prompt in front of each answer; `logprobs: k` reports each
answer token's log-probability and the k likeliest tokens at its place (the model's own, at
temperature 1).
"""

import time
import uuid
from collections.abc import Iterator

from lmforge.infer.candidates import Candidate
from lmforge.infer.engine import Engine, Prompt
from lmforge.infer.options import GenerationOptions
from lmforge.serve.protocol import (
    COMPLETION_REFUSED,
    REFUSED,
    Completion,
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    refused_fields,
)
from lmforge.serve.sampling import ApiSettings, RequestError, check_model, generation_options, refuse, usage


def text_completion(request: CompletionRequest, engine: Engine, settings: ApiSettings) -> Completion | Iterator[str]:
    """The answers to a text completion request: whole, or (`stream`) the SSE data of its chunks."""
    refused = refused_fields(request)
    refused += ["suffix"] if request.suffix else []
    refused += ["best_of"] if request.best_of is not None and request.best_of != request.n else []
    refuse(refused, {**REFUSED, **COMPLETION_REFUSED})
    check_model(request, settings)
    options = generation_options(request, engine, settings, max_tokens=request.max_tokens,
                                 logprobs=request.logprobs)
    prompts = [engine.text_prompt(text) for text in _prompt_items(request.prompt)]
    texts = [engine.tokenizer.decode(prompt.ids, skip_special_tokens=True) if request.echo else ""
             for prompt in prompts]
    completion_id, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
    if request.stream:
        with_usage = bool(request.stream_options and request.stream_options.include_usage)
        return _stream_events(engine, prompts, texts, options, completion_id, created, settings.model_id,
                              with_usage)
    choices, completion_tokens = [], 0
    for number, (prompt, echoed) in enumerate(zip(prompts, texts, strict=True)):
        for j, candidate in enumerate(engine.complete(prompt, options)):
            completion_tokens += len(candidate.token_ids)
            choices.append(CompletionChoice(
                index=number * options.n + j, text=echoed + candidate.text, finish_reason=candidate.finish_reason,
                logprobs=_logprobs(engine, candidate, len(echoed)) if options.logprobs is not None else None))
    return Completion(id=completion_id, created=created, model=settings.model_id, choices=choices,
                      usage=usage(sum(len(p.ids) for p in prompts), completion_tokens))


def _prompt_items(prompt: str | list[str] | list[int] | list[list[int]]) -> list[str | list[int]]:
    """The request's prompts: one text, several texts, one list of token ids, or several."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise RequestError("prompt is empty")
    if all(isinstance(item, int) for item in prompt):
        return [prompt]  # type: ignore[list-item]
    return list(prompt)  # type: ignore[arg-type]


def _logprobs(engine: Engine, candidate: Candidate, offset: int) -> CompletionLogprobs:
    """The legacy shape: parallel lists of tokens, their log-probabilities, the alternatives and the text
    offsets (counted from the start of the choice's text, echoed prompt included)."""
    tokens = [engine.tokenizer.decode([token]) for token in candidate.token_ids]
    alternatives = candidate.top_logprobs or ((),) * len(tokens)
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return CompletionLogprobs(
        tokens=tokens, token_logprobs=list(candidate.token_logprobs or ()),
        top_logprobs=[{engine.tokenizer.decode([other]): value for other, value in top} for top in alternatives],
        text_offset=offsets)


def _stream_events(engine: Engine, prompts: list[Prompt], echoed: list[str], options: GenerationOptions,
                   completion_id: str, created: int, model: str, with_usage: bool) -> Iterator[str]:
    def chunk(choices: list[CompletionChoice], tokens: tuple[int, int] | None = None) -> str:
        return Completion(id=completion_id, created=created, model=model, choices=choices,
                          usage=usage(*tokens) if tokens else None).model_dump_json(exclude_none=True)

    completion_tokens = 0
    for number, (prompt, text) in enumerate(zip(prompts, echoed, strict=True)):
        first = number * options.n
        if text:
            for j in range(options.n):
                yield chunk([CompletionChoice(index=first + j, text=text, finish_reason=None)])
        for delta in engine.stream(prompt, options):
            finished = delta.candidate
            logprobs = None
            if finished is not None:
                completion_tokens += len(finished.token_ids)
                if options.logprobs is not None:
                    logprobs = _logprobs(engine, finished, len(text))
            yield chunk([CompletionChoice(index=first + delta.index, text=delta.text,
                                          finish_reason=delta.finish_reason, logprobs=logprobs)])
    if with_usage:
        yield chunk([], (sum(len(p.ids) for p in prompts), completion_tokens))
    yield "[DONE]"
