"""LocalEngine: the in-process :class:`~app.backends.chat_backend.ChatBackend`, one long-lived thread that owns the
model.

All torch work (loading, prompt rendering, prefill, decode, freeing memory) happens on that thread, one job at a
time: an effort comparison (one batch of several answers) never runs beside a chat answer. The one exception is
Model ▸ Serve on localhost: the OpenAI-compatible server (engine/server) runs the same model object on its own
batching thread, with its own KV cache; the engine's per-model lock (engine/model_lock.py) lets the two take turns
call by call. Jobs arrive through a thread-safe ``queue.Queue``; results go
back to the GUI's event loop through an ``asyncio.Queue`` fed with ``loop.call_soon_threadsafe``. The thread never
touches a widget.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import queue
import sys
import threading
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gpt_oss_desktop.app.backends.chat_backend import (
    DEMO_MODEL,
    ChatRequest,
    LoadError,
    LoadErrorKind,
    ModelInfo,
    RequestError,
)
from gpt_oss_desktop.engine.batch_generator import BatchGenerator
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.context_fit import ContextWindow
from gpt_oss_desktop.engine.errors import (
    CheckpointError,
    EngineError,
    GenerationError,
    InsufficientMemoryError,
    LoadCancelled,
    MissingFilesError,
    NotAModelFolderError,
    UnsupportedCheckpointError,
    UnsupportedDeviceError,
)
from gpt_oss_desktop.engine.events import Delta, Done, FinishReason, LoadProgress, ToolCall
from gpt_oss_desktop.engine.generator import Generator, ModelLike
from gpt_oss_desktop.engine.harmony import ChatMessage
from gpt_oss_desktop.engine.json_schema import CallSchemas
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.request_log import RequestListener
from gpt_oss_desktop.engine.vocab import get_encoding
from gpt_oss_desktop.engine.weights_mode import DEFAULT_WEIGHTS, WeightsMode, parse_weights_mode

if TYPE_CHECKING:
    from gpt_oss_desktop.engine.server.runner import RunningServer

logger = logging.getLogger(__name__)

# Context allocated for a chat. The model allows 131,072 tokens, but the KV cache is allocated up front and long
# chats are rare on a desktop; 16k keeps gpt-oss-20b's cache near 1 GB.
DEFAULT_CONTEXT: Final = 16384

Loader = Callable[[str, LoadProgress], ModelLike]
"""``loader(model_ref, on_progress)`` turns a model reference into a loaded model on the engine thread, calling
``on_progress(fraction, text)`` as it goes; it must let :class:`engine.errors.LoadCancelled` raised by
``on_progress`` propagate (that is how a load is cancelled)."""


# -- messages between the GUI loop and the engine thread ---------------------------------------------------------


class _Outbox:
    """The engine thread's end of one job's event channel into the GUI loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def put(self, event: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, event)
        except RuntimeError:  # the loop is closed: the window is gone and nobody is listening any more
            logger.debug("dropped %s: event loop closed", type(event).__name__)


@dataclass(frozen=True, slots=True)
class _Progress:
    fraction: float
    text: str


@dataclass(slots=True)
class _LoadJob:
    model_ref: str
    cancel: threading.Event
    outbox: _Outbox
    weights: WeightsMode = DEFAULT_WEIGHTS


@dataclass(slots=True)
class _GenerateJob:
    request: ChatRequest
    cancel: threading.Event
    outbox: _Outbox


@dataclass(slots=True)
class _CompareJob:
    requests: tuple[ChatRequest, ...]
    cancel: threading.Event
    outbox: _Outbox


@dataclass(slots=True)
class _UnloadJob:
    outbox: _Outbox


@dataclass(slots=True)
class _ContextJob:
    length: int
    outbox: _Outbox


@dataclass(slots=True)
class _StopJob:
    done: threading.Event = field(default_factory=threading.Event)


_Job = _LoadJob | _GenerateJob | _CompareJob | _UnloadJob | _ContextJob | _StopJob
_UNLOADED: Final = "unloaded"


# -- helpers that run on the engine thread ------------------------------------------------------------------------


def load_local_model(
    model_ref: str,
    on_progress: LoadProgress | None = None,
    *,
    device: str | None = None,
    dtype: Any = None,
    weights: str = DEFAULT_WEIGHTS,
) -> ModelLike:
    """The default loader: a checkpoint folder, or the demo model, through :func:`engine.load_model`."""
    from gpt_oss_desktop.engine import (
        load_model,  # imports torch: deferred so the window appears before torch is loaded
    )

    ref = model_ref if model_ref == DEMO_MODEL else str(Path(model_ref).expanduser())
    return load_model(ref, device=device, dtype=dtype, on_progress=on_progress, weights=weights)


def classify_load_error(exc: BaseException, model_ref: str) -> LoadError:
    """Map an exception raised while loading onto the category that decides the advice shown to the user.

    By type only: the engine raises a class for each problem where it finds it (engine/errors.py). The message
    names a path once: the engine's own when its error names one (the folder, or the file at fault), else
    ``model_ref``.
    """
    if isinstance(exc, CheckpointError) and exc.path is not None:
        message = str(exc)
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        # str() of an OSError quotes its file too ("[Errno 2] No such file or directory: '/x'")
        message = f"{exc.filename}: {exc.strerror}"
    else:
        message = f"{model_ref}: {str(exc) or type(exc).__name__}"
    if isinstance(exc, NotAModelFolderError):
        kind = LoadErrorKind.NOT_A_MODEL
    elif isinstance(exc, MissingFilesError | FileNotFoundError):
        kind = LoadErrorKind.MISSING_FILES
    elif isinstance(exc, UnsupportedCheckpointError):
        kind = LoadErrorKind.UNSUPPORTED_CHECKPOINT
    elif isinstance(exc, InsufficientMemoryError | MemoryError) or _is_torch_out_of_memory(exc):
        kind = LoadErrorKind.OUT_OF_MEMORY
    elif isinstance(exc, UnsupportedDeviceError):
        kind = LoadErrorKind.UNSUPPORTED_DEVICE
    elif isinstance(exc, EngineError):  # CheckpointError, ConfigError, VocabularyError: damaged files
        kind = LoadErrorKind.INVALID_CHECKPOINT
    else:
        kind = LoadErrorKind.UNEXPECTED
    return LoadError(kind, message, model_ref)


def _is_torch_out_of_memory(exc: BaseException) -> bool:
    # A custom loader (LocalEngine(loader=...)) may let torch's own error through. torch is only looked up, never
    # imported here: if it is not loaded, nothing raised a torch error.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(exc, torch.OutOfMemoryError)


def _device_name(model: ModelLike) -> str:
    device = model.device
    if device.type == "cuda":
        import torch

        return str(torch.cuda.get_device_name(device))
    return "CPU" if device.type == "cpu" else device.type.upper()


def _display_name(model_ref: str) -> str:
    # The demo is a toy (engine/demo): say so wherever its name appears, so nobody mistakes its answers for gpt-oss's.
    return "Demo model (toy)" if model_ref == DEMO_MODEL else Path(model_ref).expanduser().name or model_ref


def served_model_id(display_name: str) -> str:
    """The model id the local server answers to: ``demo`` for the toy, else the checkpoint folder's name."""
    return DEMO_MODEL if display_name == _display_name(DEMO_MODEL) else display_name


def _prompt(request: ChatRequest) -> list[int]:
    """The request's prompt tokens, with the tools it offers."""
    from gpt_oss_desktop.engine.harmony import render_prompt

    return render_prompt(
        request.messages,
        effort=request.effort,
        instructions=request.instructions,
        tools=request.tools or None,
        python_tool=request.python_tool,
        browser_tool=request.browser_tool,
    )


def _params(request: ChatRequest) -> SamplingParams:
    """The request's sampling, with a function call's arguments held to JSON and to the function's parameters schema
    when it offers functions (a call the model makes then completes, parses and fits the function;
    engine/channel_guard.py, engine/json_schema.py)."""
    if request.tools and not request.params.json_calls:
        schemas = CallSchemas.for_functions(request.tools)
        return dataclasses.replace(request.params, json_calls=True, call_schemas=schemas)
    return request.params


def kv_bytes_per_token(model: object) -> int:
    """KV cache bytes one token of one chat takes: the full-attention layers' keys and values (the sliding-window
    layers keep a fixed window whatever the context). 0 for a model without a gpt-oss config (the scripted one)."""
    config = getattr(model, "config", None)
    if not isinstance(config, ModelConfig):
        return 0
    return config.kv_bytes_per_token(getattr(getattr(model, "dtype", None), "itemsize", 2))


def _free_device_memory() -> None:
    # No gc.collect() here: on this thread it could destroy Qt objects (see app/shell/garbage_collector.py).
    # The model's tensors are freed by reference counting when the last reference goes; the GUI thread collects any
    # cycles.
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # hand the cached blocks back so the next model (or another program) can use them


# -- the backend ------------------------------------------------------------------------------------------------


class LocalEngine:
    """Runs models in this process on a dedicated engine thread.

    Implements :class:`~app.backends.chat_backend.ChatBackend`.

    Args:
        loader: turns a model reference into a model (default :func:`load_local_model`); runs on the engine thread.
        max_context: tokens of KV cache to allocate per chat.
    """

    def __init__(
        self, *, loader: Loader | None = None, max_context: int = DEFAULT_CONTEXT, json_arguments: bool = True
    ) -> None:
        # json_arguments: hold a function call's arguments to JSON where functions are offered (see _params). Tests
        # of what the app does with malformed arguments (which a server may still send) turn it off.
        self._json_arguments = json_arguments
        # A chat longer than the context leaves out its oldest turns (engine/context_fit.py) rather than fail; set
        # from the GUI thread (set_fit_context), read by the engine thread at each request.
        self.fit_context = True
        self._window = ContextWindow()  # engine thread only
        self._loader: Loader = loader or self._load_default
        self._weights: WeightsMode = DEFAULT_WEIGHTS  # for the next load (GUI thread)
        self._job_weights: WeightsMode = DEFAULT_WEIGHTS  # of the load running (engine thread)
        self._max_context = max_context
        self._jobs: queue.Queue[_Job] = queue.Queue()
        self._info: ModelInfo | None = None
        self._current_cancel: threading.Event | None = None
        self._load_cancel: threading.Event | None = None
        self._closed = False
        # Owned by the engine thread only.
        self._model: ModelLike | None = None
        self._loaded_info: ModelInfo | None = None  # the loaded model's, as the engine thread knows it
        self._generator: Generator | None = None
        self._batch: BatchGenerator | None = None
        # The local server, when serving: started and stopped from the GUI loop (through a worker thread), stopped
        # by the engine thread too when the model goes; the lock makes those exclusive.
        self._server: RunningServer | None = None
        self._server_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="gpt-oss-engine", daemon=True)
        self._thread.start()

    # -- ChatBackend (GUI thread) --------------------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def set_fit_context(self, on: bool) -> None:
        """ContextFitBackend: leave out a long chat's oldest turns (True, the default) or let it fail (False)."""
        self.fit_context = on

    async def load(self, model_ref: str, on_progress: LoadProgress | None = None) -> ModelInfo:
        await self.stop_server()  # the server serves the model being replaced; clients get a clean end
        cancel = threading.Event()
        outbox = self._submit(lambda o: _LoadJob(model_ref, cancel, o, self._weights))
        self._load_cancel = cancel
        self._info = None  # the old model is unloaded first, whatever happens to the new one
        try:
            while True:
                event = await outbox.queue.get()
                if isinstance(event, _Progress):
                    if on_progress is not None:
                        on_progress(event.fraction, event.text)
                elif isinstance(event, LoadError):
                    raise event
                else:
                    assert isinstance(event, ModelInfo), event
                    self._info = event
                    return event
        finally:
            if self._load_cancel is cancel:
                self._load_cancel = None

    @property
    def weights_mode(self) -> str:
        return self._weights

    def set_weights_mode(self, mode: str) -> None:
        """``"bf16"`` or ``"q8"`` for the next load (WeightsBackend); an unknown mode raises EngineError."""
        self._weights = parse_weights_mode(mode)

    def _load_default(self, model_ref: str, on_progress: LoadProgress) -> ModelLike:
        """:func:`load_local_model` with the running load's weights mode (engine thread)."""
        return load_local_model(model_ref, on_progress, weights=self._job_weights)

    def cancel_load(self) -> None:
        """Stop the running load at its next progress step; ``load`` then raises a CANCELLED LoadError."""
        if self._load_cancel is not None:
            self._load_cancel.set()

    async def stream(self, request: ChatRequest) -> AsyncGenerator[Delta | Done, None]:
        cancel = threading.Event()
        outbox = self._submit(lambda o: _GenerateJob(request, cancel, o))
        self._current_cancel = cancel
        try:
            while True:
                event = await outbox.queue.get()
                if isinstance(event, RequestError):
                    raise event
                yield event
                if isinstance(event, Done):
                    return
        finally:
            # A consumer that stops listening early must not leave the engine generating for nobody.
            cancel.set()
            if self._current_cancel is cancel:
                self._current_cancel = None

    async def stream_compare(self, requests: Sequence[ChatRequest]) -> AsyncGenerator[tuple[int, Delta | Done], None]:
        batch = tuple(requests)
        if not batch:
            raise RequestError("a comparison needs at least one request")
        cancel = threading.Event()
        outbox = self._submit(lambda o: _CompareJob(batch, cancel, o))
        self._current_cancel = cancel
        finished: set[int] = set()
        try:
            while len(finished) < len(batch):
                event = await outbox.queue.get()
                if isinstance(event, RequestError):
                    raise event
                index, item = event
                if isinstance(item, Done):
                    finished.add(index)
                yield index, item
        finally:
            cancel.set()  # as in stream(): nobody listening, so stop generating
            if self._current_cancel is cancel:
                self._current_cancel = None

    # -- serving (ServingBackend) ----------------------------------------------------------------------------

    @property
    def server_url(self) -> str | None:
        server = self._server
        return None if server is None else server.base_url

    async def start_server(self, config: ServerConfig, on_request: RequestListener | None = None) -> str:
        from gpt_oss_desktop.engine.server.runner import RunningServer, ServerStartError  # deferred: the web stack

        info, model = self._info, self._model
        if info is None or model is None:
            raise RequestError("load a model first: the server serves the model the app has loaded")
        await self.stop_server()
        server = RunningServer(
            model,
            config,
            model_id=served_model_id(info.name),
            aliases=(info.name,),
            max_context=self._max_context,
            encoding=get_encoding(),
            on_request=on_request,
        )
        try:
            await asyncio.to_thread(server.start)
        except (ServerStartError, OSError) as exc:
            await asyncio.to_thread(server.stop)
            raise RequestError(f"could not start the server: {exc}") from exc
        with self._server_lock:
            self._server = server
        logger.info("serving %s on %s", info.name, server.base_url)
        return server.base_url

    async def stop_server(self) -> None:
        with self._server_lock:
            server, self._server = self._server, None
        if server is not None:
            await asyncio.to_thread(server.stop)
            logger.info("stopped serving")

    def _stop_server_now(self) -> None:
        """On the engine thread, before the model goes (unload, close)."""
        with self._server_lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def cancel(self) -> None:
        if self._current_cancel is not None:
            self._current_cancel.set()

    @property
    def context_length_setting(self) -> int:
        """The context the engine allows a chat (Model ▸ Context length), whether or not a model is loaded."""
        return self._max_context

    async def set_context_length(self, length: int) -> ModelInfo | None:
        """Let chats grow to ``length`` tokens from the next answer on. With a model loaded, its generators are made
        anew on the engine thread once any answer running has ended (the weights stay; a chat's KV cache grows as it
        is filled, so a larger limit costs memory only when used). Returns the loaded model's info, or None."""
        if length <= 0:
            raise ValueError(f"a context length must be positive, got {length}")
        outbox = self._submit(lambda o: _ContextJob(length, o))
        result = await outbox.queue.get()
        if isinstance(result, ModelInfo):
            self._info = result
            return result
        return None

    async def unload(self) -> None:
        outbox = self._submit(_UnloadJob)
        self._info = None
        await outbox.queue.get()

    def close(self, timeout: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self.cancel()
        stop = _StopJob()
        self._jobs.put(stop)
        # Bounded: a load in progress cannot be interrupted, and the thread is a daemon, so exit is never blocked.
        if not stop.done.wait(timeout):
            logger.warning("engine thread still busy after %.1f s; leaving it to exit with the process", timeout)

    def _submit(self, make: Callable[[_Outbox], _Job]) -> _Outbox:
        if self._closed:
            raise RequestError("the engine has been shut down")
        outbox = _Outbox(asyncio.get_running_loop())
        self._jobs.put(make(outbox))
        return outbox

    # -- engine thread ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if isinstance(job, _StopJob):
                    self._unload()
                    job.done.set()
                    return
                if isinstance(job, _LoadJob):
                    self._load(job)
                elif isinstance(job, _GenerateJob):
                    self._generate(job)
                elif isinstance(job, _CompareJob):
                    self._compare(job)
                elif isinstance(job, _ContextJob):
                    self._set_context(job)
                else:
                    self._unload()
                    job.outbox.put(_UNLOADED)
            except Exception as exc:  # a bug in one job must not kill the thread that every later job needs
                logger.exception("engine thread: %s failed", type(job).__name__)
                if not isinstance(job, _StopJob):
                    job.outbox.put(RequestError(f"internal error: {exc}"))

    def _load(self, job: _LoadJob) -> None:
        if self._model is not None:
            job.outbox.put(_Progress(0.0, "Unloading the previous model…"))
            self._unload()
        name = _display_name(job.model_ref)
        job.outbox.put(_Progress(0.05, f"Loading {name}…"))

        def progress(fraction: float, text: str) -> None:
            if job.cancel.is_set():
                raise LoadCancelled(f"loading {name} was cancelled")
            job.outbox.put(_Progress(0.05 + 0.9 * fraction, f"Loading {name}: {text}"))

        try:
            if job.cancel.is_set():
                raise LoadCancelled(f"loading {name} was cancelled")
            self._job_weights = job.weights
            model = self._loader(job.model_ref, progress)
            # Loading the harmony vocabulary holds the GIL for ~0.2 s; do it now rather than inside the first
            # answer, where it would freeze the window mid-stream.
            encoding = get_encoding()
            generator = Generator(model, max_context=self._max_context, encoding=encoding)
            batch = BatchGenerator(model, max_context=self._max_context, encoding=encoding)
            info = ModelInfo(
                _display_name(job.model_ref),
                _device_name(model),
                generator.context_length,
                weights=str(getattr(model, "weights", DEFAULT_WEIGHTS)),  # a scripted model has none
                kv_bytes_per_token=kv_bytes_per_token(model),
            )
        except LoadCancelled as exc:
            logger.info("%s", exc)
            _free_device_memory()
            job.outbox.put(LoadError(LoadErrorKind.CANCELLED, str(exc), job.model_ref))
            return
        except Exception as exc:  # MemoryError too: reported to the user, and the app keeps running
            error = classify_load_error(exc, job.model_ref)
            # One line on the terminal; the traceback goes to the log file only (engine.logging_setup).
            logger.warning("could not load the model: %s", error, exc_info=True)
            _free_device_memory()  # a half-loaded model may hold most of the GPU
            job.outbox.put(error)
            return
        self._model, self._generator, self._batch = model, generator, batch
        self._loaded_info = info
        job.outbox.put(_Progress(1.0, "Ready"))
        job.outbox.put(info)

    def _set_context(self, job: _ContextJob) -> None:
        self._max_context = job.length
        model, info = self._model, self._loaded_info
        if model is None or info is None:
            job.outbox.put(_UNLOADED)
            return
        encoding = get_encoding()
        # The old generators (and their caches) go when these replace them; the cut a long chat kept goes too.
        self._generator = Generator(model, max_context=job.length, encoding=encoding)
        self._batch = BatchGenerator(model, max_context=job.length, encoding=encoding)
        self._window = ContextWindow()
        self._loaded_info = dataclasses.replace(info, context_length=self._generator.context_length)
        job.outbox.put(self._loaded_info)

    def _unload(self) -> None:
        self._stop_server_now()
        if self._model is None:
            return
        self._generator = None
        self._batch = None
        self._model = None
        self._loaded_info = None
        _free_device_memory()
        logger.info("model unloaded")

    def _generate(self, job: _GenerateJob) -> None:
        if self._generator is None:
            job.outbox.put(RequestError("no model is loaded"))
            return
        request = job.request
        sent_any = False
        try:
            dropped = 0
            if self.fit_context and self._model is not None:
                request, dropped = self._fitted(request, self._model)
            prompt = _prompt(request)
            params = _params(request) if self._json_arguments else request.params
            for event in self._generator.stream(prompt, params, job.cancel):
                if isinstance(event, ToolCall):
                    continue  # the call's text came as Deltas and its message comes in Done, where the app reads it
                if isinstance(event, Done) and dropped:
                    event = dataclasses.replace(event, dropped_turns=dropped)
                job.outbox.put(event)
                sent_any = True
        except GenerationError as exc:
            # Raised before the first token (prompt too long for the context, ...), so no Done was sent yet.
            if sent_any:
                job.outbox.put(Done(FinishReason.ERROR, error=str(exc)))
            else:
                job.outbox.put(RequestError(str(exc)))

    def _fitted(
        self, request: ChatRequest, model: ModelLike, window: ContextWindow | None = None
    ) -> tuple[ChatRequest, int]:
        """``request`` with its chat's oldest turns left out where the whole chat would not leave the answer room in
        the context (engine/context_fit.py), and how many turns went. ``window``: where the chat was cut before
        (default: the chat's, kept across its answers)."""
        context = min(self._max_context, model.config.max_context_length)

        def prompt_length(messages: Sequence[ChatMessage]) -> int:
            return len(_prompt(dataclasses.replace(request, messages=tuple(messages))))

        fitted = (window or self._window).fit(
            request.messages, prompt_length, context=context, max_tokens=request.params.max_tokens
        )
        if not fitted.dropped_turns:
            return request, 0
        logger.info("left out the oldest %d turns of the chat to fit the context", fitted.dropped_turns)
        return dataclasses.replace(request, messages=fitted.messages), fitted.dropped_turns

    def _compare(self, job: _CompareJob) -> None:
        if self._batch is None:
            job.outbox.put(RequestError("no model is loaded"))
            return
        requests, dropped = list(job.requests), 0
        try:
            if self.fit_context and self._model is not None and requests:
                # A comparison asked with a long chat as its context: cut as a chat's answer would be, but afresh
                # (the efforts share the messages; the chat's own cut is left for the chat).
                fitted = [self._fitted(request, self._model, ContextWindow()) for request in requests]
                requests, dropped = [request for request, _ in fitted], max(n for _, n in fitted)
            prompts = [_prompt(request) for request in requests]
            events = self._batch.stream(prompts, [request.params for request in requests], job.cancel)
        except GenerationError as exc:  # raised before any work: no event was sent yet
            job.outbox.put(RequestError(str(exc)))
            return
        for event in events:
            if isinstance(event[1], ToolCall):
                continue  # as in _generate
            if isinstance(event[1], Done) and dropped:
                event = (event[0], dataclasses.replace(event[1], dropped_turns=dropped))
            job.outbox.put(event)
