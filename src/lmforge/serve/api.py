"""The OpenAI-compatible server: `GET /v1/models`, `POST /v1/chat/completions` (SSE streaming, n > 1).

Limits are part of the server, not left to the client: request bodies, `max_tokens` and `n` are
bounded, an optional API key guards every route, and images obey the `MediaPolicy`.
"""

import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import iterate_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmforge.data.templates.template import Message as ChatTurn
from lmforge.errors import LmforgeError
from lmforge.infer.candidates import Candidate
from lmforge.infer.engine import TOOLS_PENDING, Engine
from lmforge.infer.options import GenerationOptions
from lmforge.serve.media import MediaPolicy
from lmforge.serve.protocol import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    Choice,
    ChoiceLogprobs,
    ChunkChoice,
    Delta,
    TokenLogprob,
    Usage,
)


@dataclass(frozen=True)
class ApiSettings:
    model_id: str
    api_key: str | None = None
    max_request_bytes: int = 16 * 1024 * 1024  # room for a data-URL image or two
    max_tokens_limit: int = 4096
    max_n: int = 16
    media: MediaPolicy = field(default_factory=MediaPolicy)


class RequestError(LmforgeError):
    """A request asks for something the server refuses."""


class BodyLimit:
    """ASGI middleware: refuse request bodies over `limit` bytes with 413, declared or streamed.

    The body is read here (up to the limit) and replayed to the app, so a body without a
    Content-Length is cut off as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _too_large(self.limit)(scope, receive, send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await _too_large(self.limit)(scope, receive, send)
                return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return _error(413, f"request body over the server's limit of {limit:,} bytes", "request_too_large")


def _error(status: int, message: str, code: str, param: str | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}})


def create_app(engine: Engine, settings: ApiSettings) -> FastAPI:
    app = FastAPI(title="lmforge", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(BodyLimit, limit=settings.max_request_bytes)
    bearer = HTTPBearer(auto_error=False)

    def authorize(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
        if settings.api_key is None:
            return
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), settings.api_key.encode()):
            raise HTTPException(status_code=401, detail="invalid API key: send `Authorization: Bearer <key>`")

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail), "invalid_api_key" if err.status_code == 401 else "error")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in err.errors())
        return _error(400, f"invalid request: {problems}", "invalid_request")

    @app.exception_handler(LmforgeError)
    async def refused(_: Request, err: LmforgeError) -> JSONResponse:
        return _error(400, str(err), "unsupported" if "not supported yet" in str(err) else "invalid_request")

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": settings.model_id, "object": "model", "created": 0,
                                            "owned_by": "lmforge"}]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)], response_model=None)
    def chat_completions(request: ChatCompletionRequest) -> ChatCompletion | EventSourceResponse:
        turns, system = _conversation(request, engine, settings)
        options = _options(request, engine, settings)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if request.stream:
            events = _stream_events(engine, turns, system, options, completion_id, created, settings.model_id)
            return EventSourceResponse(iterate_in_threadpool(events), ping=15)
        candidates = engine.candidates(turns, system, options)
        prompt_tokens = len(engine.encode(turns, system))
        completion_tokens = sum(len(c.token_ids) for c in candidates)
        return ChatCompletion(
            id=completion_id, created=created, model=settings.model_id,
            choices=[Choice(index=i, message=AssistantMessage(content=c.text), finish_reason=c.finish_reason,
                            logprobs=_logprobs(engine, c) if request.logprobs else None)
                     for i, c in enumerate(candidates)],
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                        total_tokens=prompt_tokens + completion_tokens))

    return app


def _conversation(request: ChatCompletionRequest, engine: Engine,
                  settings: ApiSettings) -> tuple[list[ChatTurn], str | None]:
    """The request's messages as template messages; images are loaded (policy-checked) and refused for
    text-only models, tools are refused until templates have tool formats."""
    if request.model != settings.model_id:
        raise RequestError(f"model `{request.model}` is not served here; this server serves `{settings.model_id}`")
    if any(m.role == "tool" or m.tool_calls for m in request.messages):
        raise RequestError(TOOLS_PENDING)
    images = [part.image_url.url for m in request.messages if isinstance(m.content, list)
              for part in m.content if part.type == "image_url" and part.image_url is not None]
    engine.check_inputs(images=settings.media.load_all(images), tools=request.tools)
    system_parts = [_text(m) for m in request.messages if m.role in ("system", "developer")]
    turns = [ChatTurn(m.role, _text(m)) for m in request.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise RequestError("the last message must be the user's")
    return turns, "\n\n".join(system_parts) if system_parts else None


def _text(message: ChatMessage) -> str:
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    return "".join(part.text or "" for part in message.content if part.type == "text")


def _options(request: ChatCompletionRequest, engine: Engine, settings: ApiSettings) -> GenerationOptions:
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is not None and max_tokens > settings.max_tokens_limit:
        raise RequestError(f"max_tokens {max_tokens} is over this server's limit of {settings.max_tokens_limit}")
    if request.n > settings.max_n:
        raise RequestError(f"n {request.n} is over this server's limit of {settings.max_n}")
    greedy = request.temperature == 0
    return engine.options(
        n=request.n, max_new_tokens=min(max_tokens or engine.defaults.max_new_tokens, settings.max_tokens_limit),
        do_sample=False if greedy else (True if request.temperature is not None or request.n > 1 else None),
        temperature=None if greedy else request.temperature, top_p=request.top_p, top_k=request.top_k,
        repetition_penalty=request.repetition_penalty, stop=request.stop, seed=request.seed,
        method=request.candidate_method, num_beams=request.num_beams, num_beam_groups=request.num_beam_groups,
        diversity_penalty=request.diversity_penalty)


def _logprobs(engine: Engine, candidate: Candidate) -> ChoiceLogprobs | None:
    if candidate.token_logprobs is None:
        return None
    entries = []
    for token_id, logprob in zip(candidate.token_ids, candidate.token_logprobs, strict=True):
        token = engine.tokenizer.decode([token_id])
        entries.append(TokenLogprob(token=token, logprob=logprob, bytes=list(token.encode("utf-8"))))
    return ChoiceLogprobs(content=entries)


def _stream_events(engine: Engine, turns: list[ChatTurn], system: str | None, options: GenerationOptions,
                   completion_id: str, created: int, model: str) -> Iterator[str]:
    def chunk(choices: list[ChunkChoice]) -> str:
        return ChatCompletionChunk(id=completion_id, created=created, model=model,
                                   choices=choices).model_dump_json(exclude_none=True)

    yield chunk([ChunkChoice(index=i, delta=Delta(role="assistant", content="")) for i in range(options.n)])
    for delta in engine.stream_candidates(turns, system, options):
        content = Delta(content=delta.text) if delta.text else Delta()
        yield chunk([ChunkChoice(index=delta.index, delta=content, finish_reason=delta.finish_reason)])
    yield "[DONE]"


def serve_api(engine: Engine, settings: ApiSettings, host: str, port: int) -> None:
    """Run the server until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="info")
