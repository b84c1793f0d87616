"""One running app per user and data folder: a second launch hands its request to the first and exits.

The first instance listens on a local socket (``QLocalServer``) whose name is derived from the user and the data
folder, so two users, or the same user with ``GPTOSS_DESKTOP_DATA_DIR`` pointing elsewhere, each get their own app.
A second launch connects, sends one JSON line (``{"model": ..., "argv": [...]}``, the model already resolved to an
absolute path against the second launch's working folder) and waits for ``ok``; the first raises its window and,
if a model was named, loads it. Two apps would otherwise write the same history database and load two models.

A crash leaves the socket file behind. A launch that finds the file but nobody answering on it removes it and
listens itself (:meth:`SingleInstance.listen`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

from gpt_oss_desktop.engine.paths import user_data_dir

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS: Final = 1500
ANSWER_TIMEOUT_MS: Final = 3000
_ACK: Final = b"ok\n"
_MAX_MESSAGE: Final = 64 * 1024  # a request is a model path and a few flags; anything larger is not ours


class SingleInstanceError(Exception):
    """The app could not claim its single-instance socket (the message says why)."""


@dataclass(frozen=True, slots=True)
class ActivationRequest:
    """What a second launch asks the running app to do: come to the front, and load ``model`` if given."""

    model: str | None = None
    argv: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        return json.dumps({"model": self.model, "argv": list(self.argv)}).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> ActivationRequest:
        """Parse one request line; raises ValueError for anything that is not a request."""
        payload = json.loads(data.decode("utf-8"))
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        model = payload.get("model")
        argv = payload.get("argv", [])
        if model is not None and not isinstance(model, str):
            raise ValueError("model must be a string")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise ValueError("argv must be a list of strings")
        return cls(model=model, argv=tuple(argv))


def server_name(data_dir: Path | None = None) -> str:
    """The socket for this user and data folder: a path in ``$XDG_RUNTIME_DIR`` (private to the user) when it
    exists, else a bare name that Qt puts in the temporary folder."""
    folder = str((data_dir or user_data_dir()).expanduser().absolute())
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    digest = hashlib.sha256(f"{user}\0{folder}".encode()).hexdigest()[:16]
    name = f"gpt-oss-desktop-{user}-{digest}"
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_absolute() and Path(runtime).is_dir():
        return str(Path(runtime) / f"{name}.sock")
    return name


def resolve_model_ref(model: str | None, cwd: Path) -> str | None:
    """A ``--model`` value as the running app must see it: folders made absolute against the launch's folder."""
    if model is None or model == "demo":
        return model
    path = Path(model).expanduser()
    return str(path if path.is_absolute() else cwd / path)


def forward(request: ActivationRequest, name: str, timeout_ms: int = ANSWER_TIMEOUT_MS) -> bool | None:
    """Hand ``request`` to a running instance listening on ``name``.

    Returns True when it acknowledged, None when nobody listens there (so this launch is the first), and False when
    something accepted the connection but did not answer (a hung instance, or a foreign program on the socket).
    Blocking; needs no running event loop.
    """
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return None
    try:
        socket.write(request.to_bytes())
        if not socket.waitForBytesWritten(timeout_ms):
            return False
        answer = b""
        while _ACK not in answer and socket.waitForReadyRead(timeout_ms):
            answer += bytes(socket.readAll().data())
        return answer.startswith(_ACK)
    finally:
        socket.disconnectFromServer()


class SingleInstance(QObject):
    """The first instance's end: listens for later launches and emits :attr:`activation_requested` for each."""

    activation_requested = Signal(object)  # an ActivationRequest

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name or server_name()
        self._server = QLocalServer(self)
        # Only this user may connect (the runtime dir is private anyway; this covers the temp-folder fallback).
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> None:
        """Start listening; a socket left by a crashed instance is removed first. Raises SingleInstanceError."""
        # Probe first: on Unix, Qt's listen() may replace a live instance's socket file instead of failing.
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        alive = probe.waitForConnected(CONNECT_TIMEOUT_MS)
        probe.abort()
        if alive:
            raise SingleInstanceError(f"another instance is listening on {self.name}")
        if self._server.listen(self.name):
            return
        if self._server.serverError() == QAbstractSocket.SocketError.AddressInUseError:
            logger.info("removing the stale single-instance socket %s (a previous run crashed)", self.name)
            QLocalServer.removeServer(self.name)
            if self._server.listen(self.name):
                return
        raise SingleInstanceError(f"cannot listen on {self.name}: {self._server.errorString()}")

    @property
    def listening(self) -> bool:
        return self._server.isListening()

    def close(self) -> None:
        self._server.close()  # also removes the socket file

    def _accept(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            # Bound methods, not lambdas holding the socket and self: such a lambda, released while the socket is
            # being destroyed, could drop the last reference to this object and delete the socket a second time.
            socket.readyRead.connect(self._on_ready_read)
            socket.disconnected.connect(self._on_disconnected)
            if socket.bytesAvailable():
                self._read(socket)

    def _on_ready_read(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket):
            self._read(socket)

    def _on_disconnected(self) -> None:
        socket = self.sender()
        if isinstance(socket, QLocalSocket):
            self._buffers.pop(socket, None)
            socket.deleteLater()

    def _read(self, socket: QLocalSocket) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if b"\n" not in data:
            if len(data) > _MAX_MESSAGE:
                logger.warning("single-instance socket: oversized message dropped")
                socket.abort()
            else:
                self._buffers[socket] = data
            return
        line = data.split(b"\n", 1)[0]
        self._buffers[socket] = b""
        try:
            request = ActivationRequest.from_bytes(line)
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors too
            logger.warning("single-instance socket: ignored a malformed request: %s", exc)
            socket.abort()
            return
        socket.write(_ACK)
        socket.flush()
        logger.info("another launch asked to come to the front (model=%s)", request.model)
        self.activation_requested.emit(request)


def claim(request: ActivationRequest, name: str | None = None, parent: QObject | None = None) -> SingleInstance | None:
    """Become the single instance, or hand ``request`` to the one already running.

    Returns None when a running instance took the request (this launch should exit). Otherwise returns this
    launch's :class:`SingleInstance`, listening if the socket could be claimed; if it could not (a hung instance,
    an unusable runtime folder) the app still starts, only without the single-instance guard, and says so in the log.
    """
    name = name or server_name()
    answered = forward(request, name)
    if answered:
        logger.info("gpt-oss desktop is already running; asked it to come to the front")
        return None
    instance = SingleInstance(name, parent)
    if answered is False:
        logger.warning("another gpt-oss desktop holds %s but does not answer; starting a separate window", name)
        return instance
    try:
        instance.listen()
    except SingleInstanceError as exc:
        logger.warning("starting without the single-instance guard: %s", exc)
    return instance


def bring_to_front(window: QWidget) -> None:
    """Show ``window`` un-minimised on top and ask for focus (Wayland may only flash it in the task bar)."""
    state = window.windowState() & ~Qt.WindowState.WindowMinimized
    window.setWindowState(state | Qt.WindowState.WindowActive)
    window.show()
    window.raise_()
    window.activateWindow()
