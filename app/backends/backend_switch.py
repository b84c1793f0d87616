"""SwitchableBackend: the one :class:`~app.backends.chat_backend.ChatBackend` the window keeps, delegating to the
local engine or to a remote server.

Loading a model folder (or the demo) makes the local engine current; loading ``server:<name>`` makes the remote
backend current. Whichever was current before is unloaded first, so a local model's memory is freed when the app
moves to a server, and a server's connection is closed when the app moves back. Model ▸ Serve on localhost serves
a model loaded on this computer only: the serving methods pass through to the local engine while it is current.
Qt-free.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence

from gpt_oss_desktop.app.backends.chat_backend import (
    ChatBackend,
    ChatRequest,
    ContextFitBackend,
    ContextLengthBackend,
    ModelInfo,
    RequestError,
    ServingBackend,
    WeightsBackend,
)
from gpt_oss_desktop.app.backends.remote_backend import RemoteBackend
from gpt_oss_desktop.app.backends.saved_connection import is_server_ref
from gpt_oss_desktop.engine.events import Delta, Done, LoadProgress
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.request_log import RequestListener


class SwitchableBackend:
    """Implements :class:`ChatBackend` and :class:`ServingBackend` over ``local`` and ``remote``."""

    def __init__(self, local: ChatBackend, remote: RemoteBackend) -> None:
        self.local = local
        self.remote = remote
        self._current: ChatBackend = local
        self._loading: ChatBackend | None = None

    @property
    def current(self) -> ChatBackend:
        """The backend answers come from now."""
        return self._current

    @property
    def is_remote(self) -> bool:
        return self._current is self.remote

    # -- ChatBackend ----------------------------------------------------------------------------------------------

    @property
    def info(self) -> ModelInfo | None:
        return self._current.info

    async def load(self, model_ref: str, on_progress: LoadProgress | None = None) -> ModelInfo:
        target: ChatBackend = self.remote if is_server_ref(model_ref) else self.local
        other = self.local if target is self.remote else self.remote
        if other.info is not None:
            await other.unload()  # one model at a time, wherever it runs
        self._current = target
        self._loading = target
        try:
            return await target.load(model_ref, on_progress)
        finally:
            self._loading = None

    def stream(self, request: ChatRequest) -> AsyncGenerator[Delta | Done, None]:
        return self._current.stream(request)

    def stream_compare(self, requests: Sequence[ChatRequest]) -> AsyncGenerator[tuple[int, Delta | Done], None]:
        return self._current.stream_compare(requests)

    def cancel(self) -> None:
        self._current.cancel()

    def cancel_load(self) -> None:
        if self._loading is not None:
            self._loading.cancel_load()

    async def unload(self) -> None:
        await self._current.unload()

    # -- WeightsBackend: the local engine's load mode (a remote server's weights are its own) ------------------------

    @property
    def weights_mode(self) -> str:
        return self.local.weights_mode if isinstance(self.local, WeightsBackend) else "bf16"

    def set_weights_mode(self, mode: str) -> None:
        if isinstance(self.local, WeightsBackend):
            self.local.set_weights_mode(mode)

    # -- ContextLengthBackend: the local engine's (a remote server's context is its own) ------------------------------

    @property
    def context_length_setting(self) -> int:
        return self.local.context_length_setting if isinstance(self.local, ContextLengthBackend) else 0

    async def set_context_length(self, length: int) -> ModelInfo | None:
        if not isinstance(self.local, ContextLengthBackend):
            return None
        info = await self.local.set_context_length(length)
        return info if self._current is self.local else None

    # -- ContextFitBackend: the local engine's (a remote server fits or refuses a long chat itself) --------------------

    def set_fit_context(self, on: bool) -> None:
        if isinstance(self.local, ContextFitBackend):
            self.local.set_fit_context(on)

    def close(self) -> None:
        self.remote.close()
        self.local.close()

    # -- ServingBackend (the local engine's, while it is current) ------------------------------------------------

    @property
    def can_serve(self) -> bool:
        """Serving is possible now: a local model is loaded by a backend that serves."""
        return not self.is_remote and isinstance(self.local, ServingBackend) and self.local.info is not None

    @property
    def server_url(self) -> str | None:
        if self.is_remote or not isinstance(self.local, ServingBackend):
            return None
        return self.local.server_url

    async def start_server(self, config: ServerConfig, on_request: RequestListener | None = None) -> str:
        if self.is_remote:
            raise RequestError(
                "Serve on localhost serves a model loaded on this computer; the app is connected to a server now"
            )
        if not isinstance(self.local, ServingBackend):
            raise RequestError("this backend cannot serve its model")
        return await self.local.start_server(config, on_request)

    async def stop_server(self) -> None:
        if isinstance(self.local, ServingBackend):
            await self.local.stop_server()
