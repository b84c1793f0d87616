"""RemoteBackend: a :class:`~app.backends.chat_backend.ChatBackend` over an OpenAI-compatible server, through the
engine's Qt-free :class:`~engine.remote.client.RemoteClient`.

"Loading" a remote model is connecting: the saved connection named by the reference ``server:<name>`` is resolved
(its key included), the server is asked for its models, and the model must be among them. Answers stream as the
same Delta/Done events the local engine yields, so the chat, the comparison, the history and the statistics need no
special case. A comparison runs its efforts as concurrent requests. A chat's tools (``ChatRequest.tools`` and the
python tool) go to the server as OpenAI function tools and its calls come back as the local engine's, so the chat's
tool loop runs unchanged; a server that refuses tools is asked without them after that error (Retry).

The client retries a 429 after its ``Retry-After`` and 5xx answers and timeouts after a growing wait (before an
answer's first event only); each wait is counted down second by second through :attr:`RemoteBackend.on_notice`
(the window's status bar). Errors become the app's typed errors
with the engine error's message: a :class:`LoadError` of a remote kind while connecting, a :class:`RequestError`
before an answer's first event; a connection that drops mid-answer ends that answer with ``Done(error=...)``
(starting "connection lost"), its partial text kept. Qt-free.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, Final

from gpt_oss_desktop.app.backends.chat_backend import ChatRequest, LoadError, LoadErrorKind, ModelInfo, RequestError
from gpt_oss_desktop.app.backends.saved_connection import connection_name, host_of, is_server_ref
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason, LoadProgress
from gpt_oss_desktop.engine.remote.client import RemoteClient, RetryListener, RetryNotice
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import (
    AuthRejected,
    NotAnOpenAIApi,
    RemoteError,
    TLSFailure,
    ToolsRejected,
    UnknownRemoteModel,
)

logger = logging.getLogger(__name__)

# The context a remote model is shown with when its server does not say (gpt-oss's own window).
DEFAULT_REMOTE_CONTEXT: Final = 131_072

ConnectionResolver = Callable[[str], RemoteConnection]
"""``resolve(name)``: saved connection ``name`` as the engine's connection, its key included. Raises
:class:`LoadError` (kind API_KEY when the key cannot be had, UNKNOWN_MODEL / NOT_A_MODEL when there is no such
connection)."""

ClientFactory = Callable[[RemoteConnection, RetryListener], RemoteClient]
"""``factory(connection, on_retry)`` builds the client (tests wrap the real one)."""
Notice = Callable[[str], None]
ProblemListener = Callable[[str, RemoteError], None]


def classify_remote_error(exc: BaseException, model_ref: str) -> LoadError:
    """A connection failure as a :class:`LoadError` whose kind picks the advice; the message is the engine's."""
    if isinstance(exc, LoadError):
        return exc
    if isinstance(exc, AuthRejected):
        kind = LoadErrorKind.API_KEY
    elif isinstance(exc, UnknownRemoteModel):
        kind = LoadErrorKind.UNKNOWN_MODEL
    elif isinstance(exc, NotAnOpenAIApi):
        kind = LoadErrorKind.NOT_AN_API
    elif isinstance(exc, TLSFailure):
        kind = LoadErrorKind.TLS_FAILURE
    elif isinstance(exc, RemoteError):  # ServerUnavailable, RateLimited, another 4xx
        kind = LoadErrorKind.SERVER_UNREACHABLE
    else:
        kind = LoadErrorKind.UNEXPECTED
    return LoadError(kind, str(exc) or type(exc).__name__, model_ref)


def _model_context(card: Any) -> int | None:
    # Servers name the window differently: ours and OpenRouter "context_length", vLLM "max_model_len".
    extra = getattr(card, "model_extra", None) or {}
    for key in ("context_length", "max_model_len", "context_window", "max_context_length"):
        value = extra.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


async def fetch_context_length(connection: RemoteConnection) -> int | None:
    """The model's context window as the server's ``GET /models`` gives it, or None (best effort: a server that
    does not say, or any failure, leaves the default)."""
    import openai  # deferred: the SDK takes ~0.3 s to import

    client = openai.AsyncOpenAI(
        base_url=connection.base_url, api_key=connection.api_key or "unused", max_retries=0, timeout=10.0
    )
    try:
        page = await client.models.list()
        for card in page.data:
            if card.id == connection.model:
                return _model_context(card)
    except Exception as exc:  # the client's list_models already reported real failures; this is only a hint
        logger.debug("no context length from %s: %s", connection.base_url, type(exc).__name__)
    finally:
        await client.close()
    return None


class RemoteBackend:
    """One connection at a time.

    Args:
        resolve: turns a saved connection's name into the engine's connection (key included).
        client_factory: builds the client (default :class:`RemoteClient`).

    Attributes:
        on_notice: told each step of a wait ("Server busy (429): retrying in 4 s…"), "" when it ends.
        on_problem: told ``(connection name, error)`` when the server rejects the key or has no such model, so the
            UI can offer to re-enter the key or choose another model in place.
    """

    def __init__(
        self,
        resolve: ConnectionResolver,
        *,
        client_factory: ClientFactory | None = None,
    ) -> None:
        self._resolve = resolve
        self._client_factory: ClientFactory = client_factory or _default_client
        self._countdown: asyncio.Task[None] | None = None
        self._client: RemoteClient | None = None
        self._connection: RemoteConnection | None = None
        self._name: str | None = None
        self._info: ModelInfo | None = None
        self._cancels: set[asyncio.Event] = set()
        self._load_task: asyncio.Task[ModelInfo] | None = None
        self._load_cancelled = False
        # The connected server refused the tools once (ToolsRejected): later answers are asked without them, until
        # the next connect (the server may have been restarted with tool support by then).
        self._tools_refused = False
        self.on_notice: Notice | None = None
        self.on_problem: ProblemListener | None = None

    # -- ChatBackend ----------------------------------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def connection_name(self) -> str | None:
        """The saved connection in use (None when not connected)."""
        return self._name if self._info is not None else None

    async def load(self, model_ref: str, on_progress: LoadProgress | None = None) -> ModelInfo:
        if not is_server_ref(model_ref):
            raise LoadError(LoadErrorKind.NOT_A_MODEL, f"{model_ref}: not a saved server connection", model_ref)
        await self.unload()
        self._load_cancelled = False
        self._load_task = asyncio.ensure_future(self._connect(model_ref, on_progress))
        try:
            return await self._load_task
        except asyncio.CancelledError:
            if not self._load_cancelled:
                raise  # the caller itself is being cancelled
            name = connection_name(model_ref)
            raise LoadError(LoadErrorKind.CANCELLED, f"connecting to {name} was cancelled", model_ref) from None
        finally:
            self._load_task = None

    async def _connect(self, model_ref: str, on_progress: LoadProgress | None) -> ModelInfo:
        name = connection_name(model_ref)
        connection = self._resolve(name)
        host = host_of(connection.base_url)
        if on_progress is not None:
            on_progress(0.1, f"Connecting to {host}…")
        self._connection = connection  # the retry countdown reads its max_retries
        client = self._client_factory(connection, self._retrying)
        try:
            try:
                models = await client.list_models()
            finally:
                self._stop_countdown()
            if connection.model not in models:
                raise UnknownRemoteModel(connection.model, models)
            if on_progress is not None:
                on_progress(0.7, f"Connected to {host}")
            context = await fetch_context_length(connection) or DEFAULT_REMOTE_CONTEXT
        except (RemoteError, LoadError) as exc:
            await client.aclose()
            if isinstance(exc, AuthRejected | UnknownRemoteModel) and self.on_problem is not None:
                self.on_problem(name, exc)
            raise classify_remote_error(exc, model_ref) from exc
        except asyncio.CancelledError:
            await client.aclose()
            raise
        except Exception as exc:  # a client bug must reach the user as a message, not a traceback
            await client.aclose()
            logger.warning("connecting to %s failed unexpectedly", name, exc_info=True)
            raise classify_remote_error(exc, model_ref) from exc
        self._client, self._connection, self._name = client, connection, name
        self._tools_refused = False
        self._info = ModelInfo(f"{connection.model} @ {name}", host, context)
        logger.info("connected to %s (%s)", name, host)
        return self._info

    def cancel_load(self) -> None:
        if self._load_task is not None:
            self._load_cancelled = True
            self._load_task.cancel()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Delta | Done, None]:
        cancel = asyncio.Event()
        self._cancels.add(cancel)
        try:
            async with contextlib.aclosing(self._stream_one(request, cancel)) as events:
                async for event in events:
                    yield event
        finally:
            cancel.set()  # a consumer that stopped listening: nothing more to fetch
            self._cancels.discard(cancel)

    async def stream_compare(self, requests: Sequence[ChatRequest]) -> AsyncGenerator[tuple[int, Delta | Done], None]:
        batch = tuple(requests)
        if not batch:
            raise RequestError("a comparison needs at least one request")
        self._require_client()
        cancel = asyncio.Event()
        self._cancels.add(cancel)
        queue: asyncio.Queue[tuple[int, Delta | Done | RequestError]] = asyncio.Queue()

        async def pump(index: int, request: ChatRequest) -> None:
            try:
                async with contextlib.aclosing(self._stream_one(request, cancel)) as events:
                    async for event in events:
                        await queue.put((index, event))
            except RequestError as exc:
                await queue.put((index, exc))

        # One request per effort, all at once: the server batches them (our own server, vLLM, SGLang do).
        tasks = [asyncio.ensure_future(pump(index, request)) for index, request in enumerate(batch)]
        finished: set[int] = set()
        started = False
        try:
            while len(finished) < len(batch):
                index, item = await queue.get()
                if isinstance(item, RequestError):
                    if not started:
                        raise item  # the batch could not run at all
                    item = Done(FinishReason.ERROR, error=str(item))  # one column failed; the others go on
                started = True
                if isinstance(item, Done):
                    finished.add(index)
                yield index, item
        finally:
            cancel.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._cancels.discard(cancel)

    def cancel(self) -> None:
        for cancel in self._cancels:
            cancel.set()

    async def unload(self) -> None:
        self.cancel()
        client, self._client = self._client, None
        self._info = self._connection = None
        self._name = None
        if client is not None:
            await client.aclose()

    def close(self) -> None:
        self.cancel()
        client, self._client = self._client, None
        self._info = None
        if client is None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the process is exiting anyway
            asyncio.get_running_loop().create_task(client.aclose())

    # -- internals ------------------------------------------------------------------------------------------------

    def _require_client(self) -> RemoteClient:
        if self._client is None:
            raise RequestError("no server is connected: choose one under Model, or Model ▸ Connect to a server…")
        return self._client

    async def _stream_one(self, request: ChatRequest, cancel: asyncio.Event) -> AsyncGenerator[Delta | Done, None]:
        """One answer: retried (visibly) while it has not started, then its events as they come."""
        client = self._require_client()

        # A server that refused tools on this connection is asked without them from then on (Retry after the error).
        offer_tools = not self._tools_refused

        def open_stream() -> AsyncIterator[Delta | Done]:
            return client.stream(
                request.messages,
                effort=request.effort,
                instructions=request.instructions,
                params=request.params,
                cancel=cancel,
                tools=request.tools if offer_tools else (),
                python_tool=request.python_tool and offer_tools,
                browser_tool=request.browser_tool and offer_tools,
            )

        events = open_stream()
        try:
            try:
                first = await anext(events)
            finally:
                self._stop_countdown()
        except RemoteError as exc:
            await _aclose(events)
            if isinstance(exc, AuthRejected | UnknownRemoteModel) and self.on_problem is not None and self._name:
                self.on_problem(self._name, exc)
            if isinstance(exc, ToolsRejected):
                self._tools_refused = True
                logger.info("%s refused tools; answering without them until it is connected again", self._name)
            raise RequestError(str(exc)) from exc
        except StopAsyncIteration:
            raise RequestError("the server ended the answer before it began") from None
        try:
            yield first
            if isinstance(first, Done):
                return
            async for event in events:
                yield event
                if isinstance(event, Done):
                    return
        finally:
            await _aclose(events)

    def _stop_countdown(self) -> None:
        """The retry went out and was answered: the countdown is over."""
        countdown, self._countdown = self._countdown, None
        if countdown is not None and not countdown.done():
            countdown.cancel()
            if self.on_notice is not None:
                self.on_notice("")

    def _retrying(self, notice: RetryNotice) -> None:
        """The client will try again after ``notice.delay_s``: count the wait down in :attr:`on_notice`."""
        if self._countdown is not None:
            self._countdown.cancel()
        self._countdown = asyncio.ensure_future(self._count_down(notice))

    async def _count_down(self, notice: RetryNotice) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + notice.delay_s
        total = self._connection.max_retries if self._connection is not None else notice.attempt
        limited = notice.retry_after is not None or "rate" in notice.reason.lower()
        what = "The server is rate-limiting requests" if limited else "The server did not answer"
        try:
            while (left := deadline - loop.time()) > 0:
                if self.on_notice is not None:
                    self.on_notice(f"{what}: retrying in {max(1, round(left))} s (retry {notice.attempt} of {total})…")
                await asyncio.sleep(min(1.0, left))
        finally:
            if self.on_notice is not None:
                self.on_notice("")


def _default_client(connection: RemoteConnection, on_retry: RetryListener) -> RemoteClient:
    return RemoteClient(connection, on_retry=on_retry)


async def _aclose(events: AsyncIterator[Any]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()
