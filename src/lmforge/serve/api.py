"""The OpenAI-compatible server: `GET /v1/models`, `POST /v1/chat/completions` (`chat`: SSE streaming,
n > 1, tools, images / videos / audios, JSON output) and `POST /v1/completions` (`completions`: plain-text prompts).

Limits are part of the server, not left to the client: request bodies, `max_tokens` and `n` are
bounded, an optional API key guards every route, and media obey the `MediaPolicy`. Every request
field is honoured or refused with a 400 that names it (`protocol.REFUSED`, `sampling`).
"""

import secrets
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import iterate_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmforge.errors import LmforgeError
from lmforge.infer.engine import Engine
from lmforge.serve.chat import chat_completion
from lmforge.serve.completions import text_completion
from lmforge.serve.protocol import ChatCompletionRequest, CompletionRequest
from lmforge.serve.sampling import ApiSettings

__all__ = ["ApiSettings", "create_app", "serve_api"]


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
    def chat_completions(request: ChatCompletionRequest) -> BaseModel | EventSourceResponse:
        return _respond(chat_completion(request, engine, settings))

    @app.post("/v1/completions", dependencies=[Depends(authorize)], response_model=None)
    def completions(request: CompletionRequest) -> BaseModel | EventSourceResponse:
        return _respond(text_completion(request, engine, settings))

    return app


def _respond(answer: BaseModel | Iterator[str]) -> BaseModel | EventSourceResponse:
    """A whole answer as JSON; a stream's events as server-sent events, generated off the event loop."""
    if isinstance(answer, BaseModel):
        return answer
    return EventSourceResponse(iterate_in_threadpool(answer), ping=15)


def serve_api(engine: Engine, settings: ApiSettings, host: str, port: int) -> None:
    """Run the server until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(create_app(engine, settings), host=host, port=port, log_level="info")
