"""The OpenAI-compatible server: `GET /v1/models`, `POST /v1/chat/completions` (SSE streaming, n > 1,
tools, images).

Limits are part of the server, not left to the client: request bodies, `max_tokens` and `n` are
bounded, an optional API key guards every route, and images obey the `MediaPolicy`.

Tools are rendered into the prompt by the template's tool format and answers are parsed back into
`tool_calls`. When streaming with tools, a candidate's text is sent as it comes until it may be the
start of a tool call; from there it is held until the candidate ends, then sent as `delta.tool_calls`
(or, if it was no call after all, as content).
"""

import json
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

from lmforge.data.multimodal.plugin import PLACEHOLDERS
from lmforge.data.templates.template import Message as ChatTurn
from lmforge.data.templates.template import ToolCall
from lmforge.errors import LmforgeError
from lmforge.infer.candidates import Candidate
from lmforge.infer.engine import Engine, Prompt
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
    DeltaToolCall,
    FunctionCall,
    TokenLogprob,
    ToolCallItem,
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
        return _error(400, str(err), "invalid_request")

    @app.get("/v1/models", dependencies=[Depends(authorize)])
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": settings.model_id, "object": "model", "created": 0,
                                            "owned_by": "lmforge"}]}

    @app.post("/v1/chat/completions", dependencies=[Depends(authorize)], response_model=None)
    def chat_completions(request: ChatCompletionRequest) -> ChatCompletion | EventSourceResponse:
        options = _options(request, engine, settings)
        prompt = _prompt(request, engine, settings)
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if request.stream:
            events = _stream_events(engine, prompt, options, completion_id, created, settings.model_id)
            return EventSourceResponse(iterate_in_threadpool(events), ping=15)
        candidates = engine.complete(prompt, options)
        prompt_tokens = len(prompt.ids)
        completion_tokens = sum(len(c.token_ids) for c in candidates)
        return ChatCompletion(
            id=completion_id, created=created, model=settings.model_id,
            choices=[Choice(index=i, message=_message(c), finish_reason=c.finish_reason,
                            logprobs=_logprobs(engine, c) if request.logprobs else None)
                     for i, c in enumerate(candidates)],
            usage=Usage(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                        total_tokens=prompt_tokens + completion_tokens))

    return app


def _prompt(request: ChatCompletionRequest, engine: Engine, settings: ApiSettings) -> Prompt:
    """The request as the engine's prompt: messages (tool calls and results included) as template turns,
    images loaded under the media policy with an `<image>` placeholder where each one was, and the tools
    unless `tool_choice` is `none`."""
    if request.model != settings.model_id:
        raise RequestError(f"model `{request.model}` is not served here; this server serves `{settings.model_id}`")
    tools = _tools(request)
    images: list[str] = []
    system_parts: list[str] = []
    turns: list[ChatTurn] = []
    for number, message in enumerate(request.messages, start=1):
        if message.role in ("system", "developer"):
            system_parts.append(_text(message))
        elif message.role == "assistant":
            calls = tuple(_tool_call(call, number) for call in message.tool_calls or [])
            turns.append(ChatTurn("assistant", _text(message), calls))
        elif message.role == "tool":
            turns.append(ChatTurn("tool", _text(message)))
        else:
            turns.append(ChatTurn("user", _text(message, images)))
    if not turns or turns[-1].role not in ("user", "tool"):
        raise RequestError("the last message must be the user's (or a tool result)")
    loaded = settings.media.load_all(images)
    system = "\n\n".join(system_parts) if system_parts else None
    return engine.prompt(turns, system, images=loaded or None, tools=tools)


def _tools(request: ChatCompletionRequest) -> list[dict[str, Any]] | None:
    """The tools the model is offered: `tool_choice` auto (the default) offers them, `none` does not."""
    choice = request.tool_choice
    if choice is None or choice == "auto":
        return request.tools
    if choice == "none":
        return None
    wanted = "`required`" if choice == "required" else f"`{json.dumps(choice)[:120]}`"
    raise RequestError(f"tool_choice {wanted} cannot be honoured: lmforge does not force the model to call a tool "
                       "(it renders the tools and parses the calls the model writes); send tool_choice `auto` "
                       "or `none`")


def _tool_call(call: ToolCallItem, number: int) -> ToolCall:
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except json.JSONDecodeError as err:
        raise RequestError(f"messages[{number - 1}]: tool call `{call.function.name}` arguments are not JSON "
                           f"({err.msg}): {call.function.arguments[:120]}") from None
    if not isinstance(arguments, dict):
        raise RequestError(f"messages[{number - 1}]: tool call `{call.function.name}` arguments must be a JSON "
                           "object")
    return ToolCall(call.function.name, arguments)


def _text(message: ChatMessage, images: list[str] | None = None) -> str:
    """The message's text; with `images`, each image part becomes an `<image>` placeholder (its URL is
    collected) where it stands among the text parts."""
    if message.content is None:
        return ""
    if isinstance(message.content, str):
        return message.content
    pieces = []
    for part in message.content:
        if part.type == "text":
            pieces.append(part.text or "")
        elif part.image_url is not None:
            if images is None:
                raise RequestError(f"images go in user messages, not in a `{message.role}` message")
            images.append(part.image_url.url)
            pieces.append(PLACEHOLDERS["images"])
    return "".join(pieces)


def _message(candidate: Candidate) -> AssistantMessage:
    if not candidate.tool_calls:
        return AssistantMessage(content=candidate.text)
    return AssistantMessage(content=candidate.content or None, tool_calls=_call_items(candidate.tool_calls))


def _call_items(calls: tuple[ToolCall, ...]) -> list[ToolCallItem]:
    return [ToolCallItem(id=f"call_{uuid.uuid4().hex[:24]}", function=FunctionCall(
        name=call.name, arguments=call.arguments_json())) for call in calls]


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


def _stream_events(engine: Engine, prompt: Prompt, options: GenerationOptions, completion_id: str, created: int,
                   model: str) -> Iterator[str]:
    def chunk(index: int, delta: Delta, finish_reason: Any = None) -> str:
        choice = ChunkChoice(index=index, delta=delta, finish_reason=finish_reason)
        return ChatCompletionChunk(id=completion_id, created=created, model=model,
                                   choices=[choice]).model_dump_json(exclude_none=True)

    for index in range(options.n):
        yield chunk(index, Delta(role="assistant", content=""))
    for delta in engine.stream(prompt, options):
        if delta.tool_calls:  # the calls, then the finish (as OpenAI sends them)
            if delta.text:
                yield chunk(delta.index, Delta(content=delta.text))
            calls = [DeltaToolCall(index=i, **item.model_dump())
                     for i, item in enumerate(_call_items(delta.tool_calls))]
            yield chunk(delta.index, Delta(tool_calls=calls))
            yield chunk(delta.index, Delta(), delta.finish_reason)
            continue
        yield chunk(delta.index, Delta(content=delta.text) if delta.text else Delta(), delta.finish_reason)
    yield "[DONE]"


def serve_api(engine: Engine, settings: ApiSettings, host: str, port: int) -> None:
    """Run the server until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="info")
