"""Serving the app with uvicorn on a background thread: the CLI's ``serve`` waits on it, the desktop app keeps its
window responsive beside it, and tests start one per test on a free port.

The socket is bound here, before uvicorn starts, so a port already in use is a typed :class:`ServerStartError`
with one clear line (uvicorn itself would log and ``sys.exit`` inside its thread), and port 0 yields the real port.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn
from openai_harmony import HarmonyEncoding

from gpt_oss_desktop.engine.continuous_batcher import ContinuousBatcher
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.generator import ModelLike
from gpt_oss_desktop.engine.server.app_factory import create_app
from gpt_oss_desktop.engine.server.config import ServerConfig
from gpt_oss_desktop.engine.server.request_log import RequestListener
from gpt_oss_desktop.engine.server.response_store import ResponseStore, default_response_store_path
from gpt_oss_desktop.engine.server.server_state import ServerState
from gpt_oss_desktop.engine.server.serving_engine import ServingEngine
from gpt_oss_desktop.engine.vocab import get_encoding

logger = logging.getLogger(__name__)


class ServerStartError(EngineError):
    """The server could not start (the port is taken, the address is not this machine's, ...)."""


class RunningServer:
    """One server: the batcher over the model, the Responses store and uvicorn, started and stopped together."""

    def __init__(
        self,
        model: ModelLike,
        config: ServerConfig,
        *,
        model_id: str,
        aliases: tuple[str, ...] = (),
        max_context: int | None = None,
        encoding: HarmonyEncoding | None = None,
        on_request: RequestListener | None = None,
    ) -> None:
        self.config = config
        encoding = encoding if encoding is not None else get_encoding()
        self.batcher = ContinuousBatcher(
            model,
            max_batch=config.max_concurrent,
            max_waiting=config.max_waiting,
            max_context=max_context,
            encoding=encoding,
            prefill_chunk=config.prefill_chunk or None,
        )
        store_path: Path = config.store_path or default_response_store_path()
        self.store = ResponseStore(store_path)
        engine = ServingEngine(self.batcher, model_id=model_id, encoding=encoding)
        self.state = ServerState(config, engine, self.store, aliases=aliases, on_request=on_request)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = config.port

    @property
    def base_url(self) -> str:
        """``http://host:port/v1`` with the real port (after :meth:`start`)."""
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> None:
        """Bind, start the batcher and uvicorn; return once the server accepts connections."""
        sock = _bind(self.config.host, self.config.port)
        self.port = sock.getsockname()[1]
        self.batcher.start()
        uv_config = uvicorn.Config(
            create_app(self.state),
            log_level="warning",
            lifespan="off",
            access_log=False,  # the app's own request log reports requests (without bodies or keys)
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(uv_config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="openai-server", daemon=True
        )
        self._thread.start()
        # uvicorn offers no "started" event, only the flag: poll it briefly (it flips within milliseconds).
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ServerStartError(f"the server did not start on {self.base_url} within {timeout:.0f} s")
            time.sleep(0.01)
        logger.info("serving on %s", self.base_url)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in the CLI)."""
        if self._thread is not None:
            while self._thread.is_alive():
                self._thread.join(0.5)

    def stop(self) -> None:
        """Stop accepting, end every request (each gets its Done), close the store. Idempotent."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        self.batcher.close()
        if thread is not None:
            thread.join(10)
        self._server = self._thread = None
        self.store.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = "is already in use" if port and exc.errno in (48, 98, 10048) else f"cannot be used ({exc.strerror})"
        raise ServerStartError(f"{host}:{port} {reason}; choose another --port") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
