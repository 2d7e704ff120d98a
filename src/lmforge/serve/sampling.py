"""What the sampling fields of a chat or text completion request become: the engine's generation
options, or a 400 that names the field and says why it cannot be honoured."""

import json
from dataclasses import dataclass, field

from lmforge.errors import LmforgeError
from lmforge.infer.engine import Engine
from lmforge.infer.options import GenerationOptions
from lmforge.serve.media import MediaPolicy
from lmforge.serve.protocol import ResponseFormat, SamplingRequest, Usage


@dataclass(frozen=True)
class ApiSettings:
    model_id: str
    api_key: str | None = None
    max_request_bytes: int = 16 * 1024 * 1024  # room for a data-URL image or two
    max_tokens_limit: int = 4096
    max_n: int = 16
    media: MediaPolicy = field(default_factory=MediaPolicy)
    reasoning_content: bool = False  # a thought goes in `reasoning_content`, apart from the answer (serve/reasoning.py)


class RequestError(LmforgeError):
    """A request asks for something the server refuses."""


def refuse(fields: list[str], reasons: dict[str, str]) -> None:
    """A 400 naming every field that cannot be honoured, each with its reason."""
    if fields:
        raise RequestError("; ".join(f"`{name}` cannot be honoured: {reasons[name]}" for name in fields))


def check_model(request: SamplingRequest, settings: ApiSettings) -> None:
    if request.model != settings.model_id:
        raise RequestError(f"model `{request.model}` is not served here; this server serves `{settings.model_id}`")


def generation_options(request: SamplingRequest, engine: Engine, settings: ApiSettings, *,
                       max_tokens: int | None, logprobs: int | None = None,
                       response_format: ResponseFormat | None = None) -> GenerationOptions:
    """The request's decoding settings over the served config's defaults; `logprobs`: alternatives per token
    to report (None: no log-probabilities)."""
    if max_tokens is not None and max_tokens > settings.max_tokens_limit:
        raise RequestError(f"max_tokens {max_tokens} is over this server's limit of {settings.max_tokens_limit}")
    if request.n > settings.max_n:
        raise RequestError(f"n {request.n} is over this server's limit of {settings.max_n}")
    greedy = request.temperature == 0
    options = engine.options(
        n=request.n, max_new_tokens=min(max_tokens or engine.defaults.max_new_tokens, settings.max_tokens_limit),
        do_sample=False if greedy else (True if request.temperature is not None or request.n > 1 else None),
        temperature=None if greedy else request.temperature, top_p=request.top_p, top_k=request.top_k,
        repetition_penalty=request.repetition_penalty, stop=request.stop, seed=request.seed,
        method=request.candidate_method, num_beams=request.num_beams, num_beam_groups=request.num_beam_groups,
        diversity_penalty=request.diversity_penalty, presence_penalty=request.presence_penalty,
        frequency_penalty=request.frequency_penalty, logit_bias=_logit_bias(request.logit_bias),
        json_schema=_json_schema(response_format), logprobs=logprobs)
    return engine.check_options(options)  # now, not mid-stream


def _logit_bias(bias: dict[str, float] | None) -> tuple[tuple[int, float], ...] | None:
    if not bias:
        return None
    bad = [key for key in bias if not key.strip().isdigit()]
    if bad:
        raise RequestError(f"logit_bias keys are token ids (as strings), got {', '.join(map(repr, bad[:5]))}")
    return tuple(sorted((int(key), float(value)) for key, value in bias.items()))


def _json_schema(response_format: ResponseFormat | None) -> str | None:
    """`response_format` as the JSON schema the answer is constrained to (None: free text)."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return json.dumps({"type": "object"})
    spec = response_format.json_schema
    if spec is None or spec.schema_ is None:
        raise RequestError("response_format json_schema needs `json_schema.schema` (the JSON schema to follow)")
    return json.dumps(spec.schema_)


def usage(prompt_tokens: int, completion_tokens: int) -> Usage:
    return Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                 total_tokens=prompt_tokens + completion_tokens)
