"""RemoteClient: streams answers from an OpenAI-compatible server as the local engine's Delta/Done events.

It speaks through the official ``openai`` SDK with the SDK's own retries off (``max_retries=0``): the retries, the
backoff and a 429's ``Retry-After`` are this module's, so they are testable and a UI can show them (``on_retry``).

A stream's errors:

- Before the first event, a failure raises one of the typed errors of :mod:`engine.remote.errors` (after the
  retries, for the retryable ones).
- After the first event nothing is retried (the answer would be replayed). A dropped connection ends the stream with
  ``Done(finish_reason=ERROR, error="connection lost …")`` whose ``messages`` hold what arrived, so the chat keeps
  the partial answer like any other; :func:`~engine.remote.errors.is_connection_lost` recognises it. A caller that
  prefers an exception passes ``raise_on_drop=True`` and gets :class:`~engine.remote.errors.ConnectionLost` (with
  ``partial_text``) instead of that Done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar

import openai
from openai.types.chat import ChatCompletionChunk
from openai_harmony import HarmonyEncoding

from gpt_oss_desktop.engine.events import Delta, Done, FinishReason
from gpt_oss_desktop.engine.harmony import ChatMessage, FunctionTool, ReasoningEffort, render_prompt
from gpt_oss_desktop.engine.remote import report
from gpt_oss_desktop.engine.remote.answer import REASONING_FIELDS, AnswerBuilder
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import (
    AuthRejected,
    ConnectionLost,
    NotAnOpenAIApi,
    RemoteError,
    ToolsRejected,
    UnknownRemoteModel,
    redact,
    tools_refused,
)
from gpt_oss_desktop.engine.remote.failures import classify, one_line
from gpt_oss_desktop.engine.remote.report import CheckStatus, CheckStep, ConnectionReport
from gpt_oss_desktop.engine.remote.request_body import DEFAULT_REASONING_FIELD, chat_request
from gpt_oss_desktop.engine.remote.tool_wire import browser_alias, offered_functions, python_alias
from gpt_oss_desktop.engine.vocab import get_encoding

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.sampling import SamplingParams

logger = logging.getLogger(__name__)

T = TypeVar("T")

# "Test connection" asks one short question at low and at high effort and compares the reasoning lengths.
CHECK_PROMPT: Final = "What is 17 times 23? Reply with the number only."
CHECK_MAX_TOKENS: Final = 1024


@dataclass(frozen=True, slots=True)
class RetryNotice:
    """A failed try that will be retried: what failed and how long the client waits first (a 429's Retry-After,
    or the backoff), so a UI can show a countdown."""

    attempt: int  # 1 = the first try failed
    delay_s: float
    reason: str  # one line, e.g. the RateLimited message (never the key)
    retry_after: float | None = None  # what the server asked for, if it did


RetryListener = Callable[[RetryNotice], None]


class _Cancelled(Exception):
    """The caller's cancel event was set while waiting (for a retry, or for the answer's first bytes)."""


# The SDK insists on a credential. Without a key the client passes this one (never OPENAI_API_KEY, which belongs to
# OpenAI, not this server) and omits the Authorization header from every request: a local server needs none.
_NO_KEY: Final = "no-key"


class RemoteClient:
    """One connection's client. Several streams may run at once (the compare view's three efforts)."""

    def __init__(
        self,
        connection: RemoteConnection,
        *,
        encoding: HarmonyEncoding | None = None,
        on_retry: RetryListener | None = None,
    ) -> None:
        self.connection = connection
        self._encoding = encoding
        self._on_retry = on_retry
        self._openai = openai.AsyncOpenAI(
            base_url=connection.base_url,
            api_key=connection.api_key or _NO_KEY,
            max_retries=0,
            timeout=connection.timeout_s,
        )
        # The SDK reads OPENAI_ORG_ID / OPENAI_PROJECT_ID from the environment; they are OpenAI's, not this server's.
        self._openai.organization = None
        self._openai.project = None
        self._headers: dict[str, Any] = {} if connection.api_key else {"Authorization": openai.Omit()}
        # The field the server streams reasoning in, once seen: earlier reasoning goes back under the same name.
        self._reasoning_field = DEFAULT_REASONING_FIELD
        # Where the last finished answer's reasoning came from (a field name, RAW_HARMONY, or None for none).
        self.last_reasoning_field: str | None = None

    def __repr__(self) -> str:
        return f"RemoteClient({self.connection!r})"

    @property
    def encoding(self) -> HarmonyEncoding:
        if self._encoding is None:
            self._encoding = get_encoding()
        return self._encoding

    # -- retries ---------------------------------------------------------------------------------------------

    async def _retrying(self, call: Callable[[], Awaitable[T]], cancel: asyncio.Event | None = None) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await _or_cancel(call(), cancel)
            except (openai.OpenAIError, ValueError) as exc:
                failure = classify(exc, self.connection, attempt)
            if failure.retry_in is None or attempt > self.connection.max_retries:
                raise failure.error from None
            notice = RetryNotice(attempt, failure.retry_in, str(failure.error), failure.retry_after)
            logger.info("retrying in %.1f s after try %d failed: %s", notice.delay_s, attempt, notice.reason)
            if self._on_retry is not None:
                self._on_retry(notice)
            await _sleep(failure.retry_in, cancel)

    # -- models ----------------------------------------------------------------------------------------------

    async def list_models(self) -> list[str]:
        """The model ids ``GET /models`` lists. Raises the typed errors of :mod:`engine.remote.errors`."""

        async def call() -> list[str]:
            raw = await self._openai.models.with_raw_response.list(extra_headers=self._headers)
            if "json" not in raw.headers.get("content-type", ""):
                what = "an HTML page" if "html" in raw.headers.get("content-type", "") else "a body that is not JSON"
                raise NotAnOpenAIApi(self.connection.base_url, what)
            try:
                page = raw.parse()
                return [model.id for model in page.data]
            except (AttributeError, TypeError, KeyError, ValueError):  # JSON, but not a model list
                raise NotAnOpenAIApi(self.connection.base_url, "JSON that is not a model list") from None

        return await self._retrying(call)

    async def _unknown_model(self, error: UnknownRemoteModel) -> RemoteError:
        """A 404 (or "model not found") for the chat request: the model is unknown, or the URL is wrong."""
        try:
            available = await self.list_models()
        except RemoteError:
            return NotAnOpenAIApi(self.connection.base_url, f"HTTP {error.status} to a chat request", status=404)
        if self.connection.model in available:
            return RemoteError(
                f"the server lists {self.connection.model!r} but answered HTTP {error.status} to a chat request; "
                "check the URL and that the model is loaded",
                status=error.status,
            )
        return UnknownRemoteModel(self.connection.model, available, status=error.status)

    # -- answers ---------------------------------------------------------------------------------------------

    async def _open(self, body: dict[str, Any]) -> openai.AsyncStream[ChatCompletionChunk]:
        chunks: openai.AsyncStream[ChatCompletionChunk] = await self._openai.chat.completions.create(
            **body, extra_headers=self._headers
        )
        content_type = chunks.response.headers.get("content-type", "")
        if "event-stream" not in content_type and ("html" in content_type or "json" in content_type):
            await chunks.close()
            what = "an HTML page" if "html" in content_type else "one JSON body"
            raise NotAnOpenAIApi(self.connection.base_url, f"{what} instead of an event stream")
        return chunks

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        effort: ReasoningEffort,
        instructions: str | None,
        params: SamplingParams,
        cancel: asyncio.Event | None = None,
        raise_on_drop: bool = False,
        tools: Sequence[FunctionTool] = (),
        python_tool: bool = False,
        browser_tool: bool = False,
    ) -> AsyncIterator[Delta | Done]:
        """Deltas (``analysis`` reasoning, ``final`` answer) then exactly one Done, as the local engine yields them.

        ``tools``, ``python_tool`` and ``browser_tool`` are offered as OpenAI function tools (python as a function
        ``python`` taking ``{"code": ...}``, the browser as ``browser_search|open|find``:
        :mod:`engine.remote.tool_wire`). A call the model makes streams as Deltas with its recipient, and the Done
        ends with the call's harmony message (``functions.NAME``, ``python`` with the code, ``browser.open`` ...),
        exactly as the local engine's Done does, so the app's tool loop reads it the same way.

        Raises the typed errors of :mod:`engine.remote.errors` before the first event (see the module docstring for
        a drop mid-answer; :class:`~engine.remote.errors.ToolsRejected` when the server refuses the tools). Setting
        ``cancel`` stops the answer: the request is closed (the server sees the disconnect) and the stream ends with
        ``Done(CANCELLED)`` carrying what arrived.
        """
        started = time.monotonic()
        functions = offered_functions(tools, python_tool, browser_tool)
        answer = AnswerBuilder(
            self.encoding,
            started,
            lambda: len(
                render_prompt(
                    messages,
                    effort=effort,
                    instructions=instructions,
                    tools=functions or None,  # python too: the server renders it as a function
                    encoding=self.encoding,
                )
            ),
            python_alias=python_alias(tools, python_tool),
            browser_alias=browser_alias(tools, browser_tool),
        )
        if cancel is not None and cancel.is_set():
            yield answer.done(FinishReason.CANCELLED)
            return
        body = chat_request(
            self.connection,
            messages,
            effort=effort,
            instructions=instructions,
            params=params,
            reasoning_field=self._reasoning_field,
            tools=functions,
        )
        try:
            chunks = await self._retrying(lambda: self._open(body), cancel)
        except _Cancelled:
            yield answer.done(FinishReason.CANCELLED)
            return
        except UnknownRemoteModel as exc:
            raise await self._unknown_model(exc) from None
        except RemoteError as exc:
            raise self._explain_refusal(exc, body) from None
        iterator = chunks.__aiter__()
        yielded = False
        try:
            while True:
                try:
                    chunk = await _next(iterator, cancel)
                except StopAsyncIteration:
                    break
                except _Cancelled:
                    for delta in answer.finish(time.monotonic()):
                        yield delta
                    yield answer.done(FinishReason.CANCELLED)
                    return
                except (openai.OpenAIError, ValueError) as exc:
                    failure = classify(exc, self.connection, 1)
                    dropped = isinstance(exc, openai.APIConnectionError)
                    if not yielded and not dropped:
                        raise failure.error from None  # e.g. an error event or non-JSON data before any text
                    for delta in answer.finish(time.monotonic()):
                        yield delta
                    if not dropped:  # the server itself ended the answer with an error: keep what arrived
                        yield answer.done(FinishReason.ERROR, error=str(failure.error))
                        return
                    lost = ConnectionLost(
                        _drop_detail(exc, self.connection.api_key), answer.partial_text, answer.partial_reasoning
                    )
                    if raise_on_drop:
                        raise lost from None
                    yield answer.done(FinishReason.ERROR, error=str(lost))
                    return
                for delta in answer.chunk(chunk, time.monotonic()):
                    yielded = True
                    yield delta
        finally:
            await chunks.close()
        for delta in answer.finish(time.monotonic()):
            yield delta
        self.last_reasoning_field = answer.reasoning_field
        if answer.reasoning_field in REASONING_FIELDS:
            self._reasoning_field = answer.reasoning_field
        finish = answer.finish_reason_enum()
        if finish is None:
            # The body ended cleanly but without a finish_reason: the server stopped mid-answer.
            lost = ConnectionLost(
                "the stream ended without a finish reason", answer.partial_text, answer.partial_reasoning
            )
            if raise_on_drop:
                raise lost
            yield answer.done(FinishReason.ERROR, error=str(lost))
            return
        yield answer.done(finish)

    def _explain_refusal(self, error: RemoteError, body: dict[str, Any]) -> RemoteError:
        """A 400 that names reasoning, after earlier reasoning was sent: say which setting avoids it (Groq). A 4xx
        that names tools or functions, after tools were sent: the server does not take them (vLLM started without
        ``--enable-auto-tool-choice``, an Ollama model without tool support, llama.cpp without ``--jinja``)."""
        if body.get("tools") and tools_refused(error):
            return ToolsRejected(str(error), status=error.status)
        sent_reasoning = any(name in message for message in body.get("messages", ()) for name in REASONING_FIELDS)
        if error.status == 400 and sent_reasoning and "reason" in str(error).lower():
            return RemoteError(
                f"{error}; this server does not accept earlier reasoning in the input: turn off "
                "'send reasoning back' for this connection",
                status=400,
            )
        return error

    # -- test connection -------------------------------------------------------------------------------------

    async def check(self) -> ConnectionReport:
        """Test connection: reachable, authorised, model listed, streaming, reasoning field, effort honoured.

        Never raises for a server problem: every step says ok / failed / skipped with a one-line detail.
        """
        steps: list[CheckStep] = []
        models: list[str] = []

        def add(name: str, ok: bool, detail: str) -> None:
            steps.append(CheckStep(name, CheckStatus.OK if ok else CheckStatus.FAILED, detail))

        def finished(field_name: str | None = None, skipped_because: str = "") -> ConnectionReport:
            tried = {step.name for step in steps}
            steps.extend(CheckStep(n, CheckStatus.SKIPPED, skipped_because) for n in report.STEPS if n not in tried)
            return ConnectionReport(tuple(steps), reasoning_field=field_name, models=tuple(models))

        url = self.connection.base_url
        try:
            models = await self.list_models()
        except AuthRejected as exc:
            add(report.REACHABLE, True, f"{url} answered")
            add(report.AUTHORISED, False, str(exc))
            return finished(skipped_because="needs a key the server accepts")
        except RemoteError as exc:
            add(report.REACHABLE, False, str(exc))
            return finished(skipped_because="the server could not be reached")
        add(report.REACHABLE, True, f"{url} answered")
        add(report.AUTHORISED, True, "key accepted" if self.connection.api_key else "no key needed")
        model = self.connection.model
        if model not in models:
            shown = ", ".join(models[:5]) + (" …" if len(models) > 5 else "")
            add(report.MODEL_LISTED, False, f"{model!r} is not among: {shown or 'no models'}")
            return finished(skipped_because="choose a listed model")
        add(report.MODEL_LISTED, True, f"{model!r} is listed ({len(models)} model(s))")

        low = await self._probe(ReasoningEffort.LOW)
        if isinstance(low, RemoteError):
            add(report.STREAMING, False, str(low))
            return finished(skipped_because="streaming failed")
        low_done, field_name = low
        ttft = f"{low_done.time_to_first_token:.2f} s" if low_done.time_to_first_token is not None else "-"
        streamed = low_done.finish_reason in (FinishReason.STOP, FinishReason.LENGTH) and low_done.completion_tokens > 0
        add(
            report.STREAMING,
            streamed,
            f"{low_done.completion_tokens} tokens, the first after {ttft}" if streamed else low_done.error or "no text",
        )
        add(
            report.REASONING_FIELD,
            field_name is not None,
            f"reasoning arrives in {field_name!r}" if field_name else "the server sent no reasoning",
        )
        high = await self._probe(ReasoningEffort.HIGH)
        if isinstance(high, RemoteError):
            add(report.EFFORT_HONOURED, False, f"the high-effort request failed: {high}")
            return finished(field_name)
        high_done = high[0]
        low_n, high_n = low_done.reasoning_tokens, high_done.reasoning_tokens
        # A high-effort answer cut off by the probe's token cap while the low one finished also counts as longer.
        honoured = high_n > low_n or (
            high_done.finish_reason is FinishReason.LENGTH and low_done.finish_reason is not FinishReason.LENGTH
        )
        estimated = " (estimated)" if low_done.counts_estimated or high_done.counts_estimated else ""
        add(
            report.EFFORT_HONOURED,
            honoured,
            f"reasoning: {low_n} tokens at low, {high_n} at high{estimated}"
            + ("" if honoured else "; the server seems to ignore the effort"),
        )
        return finished(field_name)

    async def _probe(self, effort: ReasoningEffort) -> tuple[Done, str | None] | RemoteError:
        """One short answer at ``effort``: its Done and where its reasoning arrived (a field name, or None)."""
        from gpt_oss_desktop.engine.sampling import SamplingParams  # deferred: torch, only for "Test connection"

        probe = RemoteClient(self.connection, encoding=self.encoding)  # its own reasoning-field memory
        try:
            async for event in probe.stream(
                [ChatMessage.user(CHECK_PROMPT)],
                effort=effort,
                instructions=None,
                params=SamplingParams(temperature=0.0, max_tokens=CHECK_MAX_TOKENS),
            ):
                if isinstance(event, Done):
                    return event, probe.last_reasoning_field
            return RemoteError("the stream ended without a Done")  # not reached: a stream always ends with one
        except RemoteError as exc:
            return exc
        finally:
            await probe.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connections (idempotent)."""
        await self._openai.close()


async def _sleep(seconds: float, cancel: asyncio.Event | None) -> None:
    if cancel is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(cancel.wait(), timeout=seconds)
    if cancel.is_set():
        raise _Cancelled


async def _next(iterator: AsyncIterator[T], cancel: asyncio.Event | None) -> T:
    """The next item, or :class:`_Cancelled` as soon as ``cancel`` is set (even while the server is silent)."""
    return await _or_cancel(iterator.__anext__(), cancel)


async def _or_cancel(awaitable: Awaitable[T], cancel: asyncio.Event | None) -> T:
    """``await awaitable``, or :class:`_Cancelled` as soon as ``cancel`` is set (the awaitable is then cancelled)."""
    if cancel is None:
        return await awaitable
    item = asyncio.ensure_future(awaitable)
    if cancel.is_set():
        item.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await item
        raise _Cancelled
    waiter = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait({item, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if item.done():
        return item.result()
    item.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await item
    raise _Cancelled


def _drop_detail(exc: BaseException, secret: str | None) -> str:
    cause: BaseException = exc
    while cause.__cause__ is not None:
        cause = cause.__cause__
    text = str(cause) or type(cause).__name__
    return one_line(redact(text, secret), secret, 120)
