"""The ASGI app: routes, the API key check, the request log, and errors in OpenAI's shape for everything.

Whatever a request does, the server answers it and stays up: :class:`~engine.server.errors.APIError` becomes its
status and JSON body, an unknown path or method a 404/405 in the same shape, and any other exception a 500 (logged
with its traceback; the client gets one line).
"""

from __future__ import annotations

import hmac
import logging
import time
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gpt_oss_desktop.engine.server.chat_completions import chat_completions
from gpt_oss_desktop.engine.server.errors import APIError, server_error, unauthorized
from gpt_oss_desktop.engine.server.request_log import RequestRecord
from gpt_oss_desktop.engine.server.responses_api import create_response, get_response
from gpt_oss_desktop.engine.server.server_state import ServerState

logger = logging.getLogger(__name__)


def create_app(state: ServerState) -> Starlette:
    routes = [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", get_model, methods=["GET"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/responses", create_response, methods=["POST"]),
        Route("/v1/responses/{response_id}", get_response, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_RequestLog, state=state), Middleware(_ApiKeyCheck, state=state)],
        exception_handlers={APIError: _api_error, HTTPException: _http_error, Exception: _unexpected_error},
    )
    app.state.server = state
    return app


async def list_models(request: Request) -> Response:
    state: ServerState = request.app.state.server
    return JSONResponse({"object": "list", "data": [_model_card(state)]})


async def get_model(request: Request) -> Response:
    state: ServerState = request.app.state.server
    state.check_model(request.path_params["model"])
    return JSONResponse(_model_card(state))


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _model_card(state: ServerState) -> dict[str, Any]:
    engine = state.engine
    return {
        "id": engine.model_id,
        "object": "model",
        "created": int(state.started),
        "owned_by": engine.owned_by,
        "context_length": engine.context_length,
    }


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        error = APIError(
            404,
            f"Unknown path {request.url.path}. This server offers /v1/models, /v1/chat/completions and /v1/responses.",
            code="unknown_url",
        )
    elif exc.status_code == 405:
        error = APIError(405, f"{request.method} is not allowed on {request.url.path}.", code="method_not_allowed")
    else:
        error = APIError(exc.status_code, str(exc.detail))
    return await _api_error(request, error)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return await _api_error(request, server_error(f"The server failed: {type(exc).__name__}: {exc}"))


class _ApiKeyCheck:
    """With an API key configured, every /v1 request needs ``Authorization: Bearer <key>``."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.key = state.config.api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.key is not None and scope["path"].startswith("/v1"):
            given = Request(scope).headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self.key.encode()):
                error = unauthorized()
                response = JSONResponse(error.body(), status_code=error.status, headers={"WWW-Authenticate": "Bearer"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _RequestLog:
    """Reports every finished request (method, path, status, client, time, tokens) to the state's listener."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._report(scope, status, time.perf_counter() - started)

    def _report(self, scope: Scope, status: int, seconds: float) -> None:
        usage = scope.get("state", {}).get("usage")
        client = scope.get("client")
        record = RequestRecord(
            method=scope["method"],
            path=scope["path"],
            status=status,
            client=f"{client[0]}:{client[1]}" if client else "?",
            seconds=seconds,
            prompt_tokens=None if usage is None else usage.prompt_tokens,
            completion_tokens=None if usage is None else usage.completion_tokens,
            reasoning_tokens=None if usage is None else usage.reasoning_tokens,
        )
        logger.info("%s %s %d %.2fs", record.method, record.path, record.status, record.seconds)
        listener = self.state.on_request
        if listener is not None:
            try:
                listener(record)
            except Exception:  # a broken log pane must not break serving
                logger.exception("the request listener failed")
