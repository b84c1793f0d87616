"""A local stand-in for the OpenAI-compatible servers people run gpt-oss on, each speaking its wire format as its
public documentation shows it, for the remote client's tests (loopback only).

Flavours (:class:`Flavor`), as their docs show a streamed gpt-oss answer:

- ``vllm_old``: vLLM before the rename, reasoning in ``delta.reasoning_content``; usage (when asked for with
  ``stream_options.include_usage``) without ``completion_tokens_details``.
- ``vllm``: vLLM after the rename (late 2025), the same with ``delta.reasoning``.
- ``sglang``: ``reasoning_content``, usage with ``reasoning_tokens``.
- ``ollama``: Ollama's ``/v1`` endpoint: ``delta.reasoning``, ``system_fingerprint: fp_ollama``, model ids like
  ``gpt-oss:20b``, usage without details.
- ``llamacpp``: llama.cpp's server: ``delta.reasoning_content``; the last chunk carries ``usage`` and ``timings``
  whether asked or not.
- ``openrouter``: ``delta.reasoning`` plus ``reasoning_details``, SSE comment lines (``: OPENROUTER PROCESSING``)
  between events, the effort only as ``reasoning: {"effort": …}`` (a top-level ``reasoning_effort`` is ignored), usage
  with ``reasoning_tokens``.
- ``groq``: ``delta.reasoning``; usage only as ``x_groq.usage`` on the last chunk; a 400 when an assistant message in
  the input carries ``reasoning`` or ``reasoning_content``.
- ``novita``: ``delta.reasoning_content``, usage with ``reasoning_tokens``.
- ``harmony``: no reasoning field at all: ``content`` is the model's raw harmony text (llama.cpp with
  ``reasoning_format: none``, older SGLang).

The "model" answers every question the same way, with reasoning whose length follows the effort it read (so a test
can see whether the effort arrived where the provider looks for it): :data:`REASONING_WORDS` words, one word per chunk,
then :data:`ANSWER`. The usage it reports counts the text's o200k tokens, as a real gpt-oss server would.

Tools: with ``tool_call=(name, arguments)`` the model calls function ``name`` whenever the request offers it and the
conversation does not end with a tool's result, streaming the call as OpenAI does (its id and name first, then the
JSON arguments in pieces of a few characters, ``finish_reason: "tool_calls"``); once the last message is a tool's
result it answers :data:`TOOL_ANSWER` with that result in it (without ``tool_call`` it always answers
:data:`ANSWER`). ``reject_tools`` answers every request that has
``tools`` with vLLM's 400 for a server started without tool support.

Faults (:class:`Fault`) are consumed one per chat request, in order: an HTTP status (with ``Retry-After``), an HTML
page, a stream cut after N chunks (the connection closes without the end of the body), slow chunks, or an error event
in the stream. ``html_everywhere`` makes every path answer a web page (a URL that is not an API); ``api_key`` makes
every request without ``Authorization: Bearer <key>`` answer 401. Every chat request's JSON body, headers and arrival
time are recorded.
"""

from __future__ import annotations

import asyncio
import enum
import json
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gpt_oss_desktop.engine.vocab import get_encoding


class Flavor(enum.StrEnum):
    VLLM_OLD = "vllm_old"
    VLLM = "vllm"
    SGLANG = "sglang"
    OLLAMA = "ollama"
    LLAMACPP = "llamacpp"
    OPENROUTER = "openrouter"
    GROQ = "groq"
    NOVITA = "novita"
    HARMONY = "harmony"


REASONING_FIELD: dict[Flavor, str | None] = {
    Flavor.VLLM_OLD: "reasoning_content",
    Flavor.VLLM: "reasoning",
    Flavor.SGLANG: "reasoning_content",
    Flavor.OLLAMA: "reasoning",
    Flavor.LLAMACPP: "reasoning_content",
    Flavor.OPENROUTER: "reasoning",
    Flavor.GROQ: "reasoning",
    Flavor.NOVITA: "reasoning_content",
    Flavor.HARMONY: None,
}
REPORTS_REASONING_TOKENS = frozenset({Flavor.SGLANG, Flavor.OPENROUTER, Flavor.NOVITA})
DEFAULT_MODEL: dict[Flavor, str] = {Flavor.OLLAMA: "gpt-oss:20b", Flavor.OPENROUTER: "openai/gpt-oss-120b"}
REASONING_WORDS = {"low": 3, "medium": 8, "high": 20}
ANSWER = ["The ", "answer ", "is ", "391."]
PROMPT_TOKENS = 42
TOOL_ANSWER = "The tool said {result}."
ARGUMENT_PIECE_CHARS = 5  # how finely a call's arguments are split across chunks
# vLLM's answer to a request with tools when it was started without --enable-auto-tool-choice.
TOOLS_REFUSED = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
HTML_PAGE = "<!DOCTYPE html>\n<html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>\n"


@dataclass(frozen=True)
class Fault:
    """What the next chat request gets instead of a normal answer.

    kind:
    - ``status``: HTTP ``status`` with an OpenAI-shaped error body (and ``retry_after`` as ``Retry-After`` if set);
    - ``html``: a 200 web page;
    - ``cut``: the stream closes after ``after_chunks`` chunks, mid-body (the client sees an incomplete body);
    - ``end``: the body ends cleanly there, without a finish reason or ``[DONE]``;
    - ``slow``: ``delay_s`` before every chunk;
    - ``error_event``: an error object instead of chunk ``after_chunks``.
    """

    kind: str
    status: int = 500
    retry_after: str | None = None
    after_chunks: int = 0
    delay_s: float = 0.0
    message: str = "injected fault"


@dataclass
class ProviderState:
    flavor: Flavor
    model: str
    api_key: str | None = None
    html_everywhere: bool = False
    # added to the reported completion (and reasoning) tokens, so a test can tell the server's counts from the client's
    completion_bonus: int = 0
    faults: list[Fault] = field(default_factory=list)
    tool_call: tuple[str, str] | None = None  # (function name, JSON arguments) the model calls when offered
    parallel_calls: int = 1  # how many copies of that call one answer makes (indices 0, 1, ...), as OpenAI may
    reject_tools: bool = False
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each chat request
    disconnected: threading.Event = field(default_factory=threading.Event)


def effort_of(flavor: Flavor, body: dict[str, Any]) -> str:
    """The effort as this provider reads it (OpenRouter only reads the object form)."""
    if flavor is Flavor.OPENROUTER:
        reasoning = body.get("reasoning")
        return reasoning.get("effort", "medium") if isinstance(reasoning, dict) else "medium"
    effort = body.get("reasoning_effort", "medium")
    return effort if effort in REASONING_WORDS else "medium"


def reasoning_pieces(effort: str) -> list[str]:
    return [f"step{i} " for i in range(REASONING_WORDS[effort])]


def count_tokens(text: str) -> int:
    """o200k tokens of ``text`` (harmony's special tokens count as one each)."""
    return len(get_encoding().encode(text, allowed_special="all"))


def _error(status: int, message: str, kind: str, code: str | None = None, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status, headers=headers or None
    )


def _sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


class ProviderApp:
    def __init__(self, state: ProviderState) -> None:
        self.state = state
        self.app = Starlette(
            routes=[
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/{path:path}", self.anything, methods=["GET", "POST"]),
            ]
        )

    def _gate(self, request: Request) -> Response | None:
        if self.state.html_everywhere:
            return HTMLResponse(HTML_PAGE)
        if self.state.api_key is not None and request.headers.get("authorization") != f"Bearer {self.state.api_key}":
            return _error(401, "Invalid API Key", "invalid_request_error", "invalid_api_key")
        return None

    async def anything(self, request: Request) -> Response:
        return HTMLResponse(HTML_PAGE, 200 if self.state.html_everywhere else 404)

    async def models(self, request: Request) -> Response:
        gated = self._gate(request)
        if gated is not None:
            return gated
        ids = [self.state.model, "another-model"]
        return JSONResponse(
            {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "test"} for i in ids]}
        )

    async def chat(self, request: Request) -> Response:
        state = self.state
        state.arrivals.append(time.monotonic())
        gated = self._gate(request)
        if gated is not None:
            return gated
        body = await request.json()
        state.bodies.append(body)
        state.headers.append(dict(request.headers))
        fault = state.faults.pop(0) if state.faults else None
        if fault is not None and fault.kind == "status":
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            return _error(fault.status, fault.message, "server_error" if fault.status >= 500 else "rate_limit", **extra)
        if fault is not None and fault.kind == "html":
            return HTMLResponse(HTML_PAGE)
        if body.get("model") != state.model:
            return _error(
                404, f"The model `{body.get('model')}` does not exist.", "invalid_request_error", "model_not_found"
            )
        if state.reject_tools and body.get("tools"):
            return _error(400, TOOLS_REFUSED, "BadRequestError")
        if state.flavor is Flavor.GROQ:
            for i, message in enumerate(body.get("messages", [])):
                for name in ("reasoning", "reasoning_content"):
                    if message.get("role") == "assistant" and name in message:
                        return _error(
                            400,
                            f"'messages.{i}' : for 'role:assistant' the following must be satisfied"
                            f"[('messages.{i}' : property '{name}' is unsupported)]",
                            "invalid_request_error",
                        )
        return StreamingResponse(self._watched(body, fault, request), media_type="text/event-stream")

    async def _watched(self, body: dict[str, Any], fault: Fault | None, request: Request) -> AsyncIterator[bytes]:
        # Starlette cancels the body's iterator when the client goes away: that is how a disconnect shows here.
        try:
            async for data in self._events(body, fault, request):
                yield data
        except (asyncio.CancelledError, GeneratorExit):
            self.state.disconnected.set()
            raise

    async def _events(self, body: dict[str, Any], fault: Fault | None, request: Request) -> AsyncIterator[bytes]:
        flavor = self.state.flavor
        effort = effort_of(flavor, body)
        thoughts = reasoning_pieces(effort)
        created = int(time.time())
        base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": created, "model": body["model"]}
        if flavor is Flavor.OLLAMA:
            base["system_fingerprint"] = "fp_ollama"
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 10_000

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> dict[str, Any]:
            return {
                **base,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **more,
            }

        deltas: list[dict[str, Any]] = []  # one per "token"
        field_name = REASONING_FIELD[flavor]
        call = self._call_to_make(body)
        answer = _answer_to(body) if self.state.tool_call is not None else ANSWER
        if field_name is None:  # raw harmony in content, cut into pieces that split the special tokens
            text = (
                "<|channel|>analysis<|message|>" + "".join(thoughts) + "<|end|><|start|>assistant<|channel|>final"
                "<|message|>" + "".join(answer)
            )
            deltas = [{"content": text[i : i + 7]} for i in range(0, len(text), 7)]
        else:
            for piece in thoughts:
                delta: dict[str, Any] = {field_name: piece}
                if flavor is Flavor.OPENROUTER:
                    delta["reasoning_details"] = [{"type": "reasoning.text", "text": piece, "format": "unknown"}]
                deltas.append(delta)
            if call is None:
                deltas.extend({"content": piece} for piece in answer)
        finish = "stop" if call is None else "tool_calls"
        if call is not None:
            for index in range(self.state.parallel_calls):
                deltas.extend(_call_deltas(*call, index=index))
        if len(deltas) > max_tokens:
            deltas, finish = deltas[:max_tokens], "length"
        reasoning_text = "".join(d.get(field_name, "") for d in deltas) if field_name is not None else ""
        bonus = self.state.completion_bonus
        content_text = "".join(d.get("content", "") for d in deltas)
        call_text = "".join(c["function"].get("arguments", "") for d in deltas for c in d.get("tool_calls", ()))
        completion = count_tokens(reasoning_text) + count_tokens(content_text) + count_tokens(call_text)
        completion += bonus
        usage: dict[str, Any] = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": completion,
            "total_tokens": PROMPT_TOKENS + completion,
        }
        if flavor in REPORTS_REASONING_TOKENS:
            usage["completion_tokens_details"] = {"reasoning_tokens": count_tokens(reasoning_text) + bonus}

        yield _sse(chunk({"role": "assistant", "content": ""}))
        for sent, delta in enumerate(deltas):
            if fault is not None and fault.kind == "slow":
                await asyncio.sleep(fault.delay_s)
            if fault is not None and fault.kind == "error_event" and sent >= fault.after_chunks:
                yield _sse({"error": {"message": fault.message, "type": "server_error"}})
                return
            if fault is not None and fault.kind == "end" and sent >= fault.after_chunks:
                return  # a clean end of the body, without a finish reason or [DONE]
            if fault is not None and fault.kind == "cut" and sent >= fault.after_chunks:
                raise ConnectionAbortedError("injected cut")  # uvicorn drops the connection mid-body
            if await request.is_disconnected():
                self.state.disconnected.set()
                return
            if flavor is Flavor.OPENROUTER:
                yield b": OPENROUTER PROCESSING\n\n"
            yield _sse(chunk(delta))
            await asyncio.sleep(0.001)
        if flavor is Flavor.LLAMACPP:
            timings = {"prompt_n": PROMPT_TOKENS, "predicted_n": completion, "predicted_per_second": 50.0}
            yield _sse(chunk({}, finish, usage=usage, timings=timings))
        elif flavor is Flavor.GROQ:
            yield _sse(chunk({}, finish, x_groq={"id": "req_test", "usage": usage}))
        else:
            yield _sse(chunk({}, finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                yield _sse({**base, "choices": [], "usage": usage})
        yield b"data: [DONE]\n\n"

    def _call_to_make(self, body: dict[str, Any]) -> tuple[str, str] | None:
        """The call this answer makes: the configured one, when the request offers it and no result came back yet."""
        if self.state.tool_call is None:
            return None
        offered = {tool.get("function", {}).get("name") for tool in body.get("tools") or ()}
        messages = body.get("messages") or [{}]
        if self.state.tool_call[0] not in offered or messages[-1].get("role") == "tool":
            return None
        return self.state.tool_call


def _answer_to(body: dict[str, Any]) -> list[str]:
    """The answer's pieces: :data:`ANSWER`, or :data:`TOOL_ANSWER` after a tool's result."""
    last = (body.get("messages") or [{}])[-1]
    if last.get("role") != "tool":
        return ANSWER
    words = TOOL_ANSWER.format(result=last.get("content", "")).split(" ")
    return [word + " " for word in words[:-1]] + words[-1:]  # a word per chunk, as ANSWER is cut


def _call_deltas(name: str, arguments: str, *, index: int = 0) -> list[dict[str, Any]]:
    """A call as OpenAI streams it: the id, type and name with empty arguments, then the arguments in pieces."""
    head = {"index": index, "id": f"call_test{index}", "type": "function", "function": {"name": name, "arguments": ""}}
    pieces = [arguments[i : i + ARGUMENT_PIECE_CHARS] for i in range(0, len(arguments), ARGUMENT_PIECE_CHARS)]
    return [
        {"tool_calls": [head]},
        *({"tool_calls": [{"index": index, "function": {"arguments": piece}}]} for piece in pieces),
    ]


class ProviderServer:
    """The app on uvicorn on a free loopback port, on a background thread (like engine/server/runner.py)."""

    def __init__(self, flavor: Flavor | str, *, model: str | None = None, **options: Any) -> None:
        flavor = Flavor(flavor)
        self.state = ProviderState(flavor, model or DEFAULT_MODEL.get(flavor, "gpt-oss-120b"), **options)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ProviderServer:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            ProviderApp(self.state).app,
            log_level="critical",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the provider test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
