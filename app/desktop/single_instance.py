"""One running app per user and data folder: a second launch hands its request to the first and exits.

The first instance listens on a local socket (``QLocalServer``) whose name is derived from the user and the data
folder, so two users, or the same user with ``GPTOSS_DESKTOP_DATA_DIR`` pointing elsewhere, each get their own app.
A second launch connects, sends one JSON line (``{"model": ..., "argv": [...]}``, the model already resolved to an
absolute path against the second launch's working folder) and waits for ``ok``; the first raises its window and,
if a model was named, loads it. Two apps would otherwise write the same history database and load two models.

Nobody else may stand in for either end. The request carries a model path and the command line, and a launch that
is answered "ok" exits, so a socket another user bound first would receive every launch and keep the app from
starting. Hence:

- the socket lives in a folder only this user can enter: ``$XDG_RUNTIME_DIR`` when it is the user's own 0700
  folder, else ``<temp>/gpt-oss-desktop-<uid>/``, created 0700 and checked (owner, mode, not a symlink) at every
  launch; a folder that fails the check is refused, never repaired or used;
- a file at the socket's path that another user owns is refused, never connected to or removed;
- each end checks the other's credentials (``SO_PEERCRED``, Linux) before trusting it: the second launch before it
  sends a byte, the first before it reads a request;
- anything foreign found makes this launch start as a window of its own and say why (:attr:`SingleInstance.problem`),
  never exit as if it had handed over.

Requests are bounded in size, nesting depth and shape; anything else is dropped with one log line.

A crash leaves the socket file behind. A launch that finds the file but nobody answering on it removes it and
listens itself (:meth:`SingleInstance.listen`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket as unix_socket
import stat
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtNetwork import QAbstractSocket, QLocalServer, QLocalSocket
from PySide6.QtWidgets import QWidget

from gpt_oss_desktop.engine.model_ref import is_builtin
from gpt_oss_desktop.engine.paths import APP_DIR_NAME, user_data_dir
from gpt_oss_desktop.engine.private_files import check_private_dir, current_uid, require_private_dir

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_MS: Final = 1500
ANSWER_TIMEOUT_MS: Final = 3000
_ACK: Final = b"ok\n"
_MAX_MESSAGE: Final = 64 * 1024  # a request is a model path and a few flags; anything larger is not ours
MAX_JSON_DEPTH: Final = 2  # {"argv": [...]}: an object holding a list, nothing deeper
MAX_ARGS: Final = 256
MAX_TEXT: Final = 4096  # PATH_MAX: the longest model path or argument a request may carry
_UCRED: Final = struct.Struct("3i")  # Linux struct ucred: pid, uid, gid
_JSON_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_JSON_BRACKET: Final = re.compile(r"[\[\]{}]")


class SingleInstanceError(Exception):
    """The app could not claim its single-instance socket (the message says why)."""


class ForeignPeerError(SingleInstanceError):
    """The socket, or the process at its other end, belongs to another user: it is not trusted either way."""


@dataclass(frozen=True, slots=True)
class ActivationRequest:
    """What a second launch asks the running app to do: come to the front, and load ``model`` if given."""

    model: str | None = None
    argv: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        return json.dumps({"model": self.model, "argv": list(self.argv)}).encode("utf-8") + b"\n"

    @classmethod
    def from_bytes(cls, data: bytes) -> ActivationRequest:
        """Parse one request line; raises ValueError for anything that is not a request (too large, nested deeper
        than a request ever is, not JSON, or not the request's shape)."""
        if len(data) > _MAX_MESSAGE:
            raise ValueError(f"over {_MAX_MESSAGE} bytes")
        text = data.decode("utf-8")
        _check_depth(text, MAX_JSON_DEPTH)  # before json.loads, which recurses: deep input raises RecursionError
        payload = json.loads(text)
        if not isinstance(payload, dict):
            raise ValueError("not a JSON object")
        model = payload.get("model")
        argv = payload.get("argv", [])
        if model is not None and not _short_text(model):
            raise ValueError(f"model must be a string of at most {MAX_TEXT} characters")
        if not isinstance(argv, list) or len(argv) > MAX_ARGS or not all(_short_text(a) for a in argv):
            raise ValueError(f"argv must be a list of at most {MAX_ARGS} strings of at most {MAX_TEXT} characters")
        return cls(model=model, argv=tuple(argv))


def _short_text(value: object) -> bool:
    return isinstance(value, str) and len(value) <= MAX_TEXT and "\0" not in value


def _check_depth(text: str, limit: int) -> None:
    """Raise ValueError if the JSON ``text`` nests arrays or objects deeper than ``limit``."""
    depth = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):  # brackets inside strings do not nest
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            raise ValueError(f"nested deeper than {limit} levels")


def socket_folder() -> Path:
    """A folder only this user can enter, for the socket: ``$XDG_RUNTIME_DIR`` if it is the user's own 0700 folder,
    else ``<temp>/gpt-oss-desktop-<uid>`` (created 0700). Raises SingleInstanceError if that folder is not private
    (another owner, a wider mode, a symlink): it is refused as found, never repaired."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_absolute():
        try:
            check_private_dir(Path(runtime))
            return Path(runtime)
        except OSError as exc:
            logger.warning("not using XDG_RUNTIME_DIR for the single-instance socket: %s", exc)
    folder = Path(tempfile.gettempdir()) / f"{APP_DIR_NAME}-{current_uid()}"
    try:
        return require_private_dir(folder)
    except OSError as exc:
        raise ForeignPeerError(
            f"refusing {folder} for the single-instance socket: {exc}. Another user may have created it to "
            "intercept this app; remove it, or set XDG_RUNTIME_DIR to a private folder"
        ) from exc


def server_name(data_dir: Path | None = None) -> str:
    """The socket for this user and data folder: a path in :func:`socket_folder` (a bare pipe name on Windows, where
    Qt limits the pipe to this user). Raises SingleInstanceError when no private folder can be had."""
    folder = str((data_dir or user_data_dir()).expanduser().absolute())
    user = str(current_uid()) if hasattr(os, "geteuid") else os.environ.get("USERNAME", "user")
    digest = hashlib.sha256(f"{user}\0{folder}".encode()).hexdigest()[:16]
    name = f"{APP_DIR_NAME}-{user}-{digest}"
    if os.name != "posix":
        return name
    return str(socket_folder() / f"{name}.sock")


def peer_uid(local: QLocalSocket) -> int | None:
    """The user id of the process at the other end of a connected ``local`` socket; None where the platform cannot
    tell (no ``SO_PEERCRED``: macOS, Windows; there the private folder and Qt's user-only access are the guard).
    Raises OSError if the credentials cannot be read."""
    if not hasattr(unix_socket, "SO_PEERCRED"):
        return None
    descriptor = int(local.socketDescriptor())
    if descriptor < 0:
        raise OSError("the connection has no socket descriptor")
    return socket_peer_uid(descriptor)


def socket_peer_uid(descriptor: int) -> int:
    """``SO_PEERCRED``'s uid for a connected Unix socket (Linux); the descriptor stays open."""
    # fromfd duplicates the descriptor: closing the duplicate leaves Qt's socket as it was.
    with unix_socket.fromfd(descriptor, unix_socket.AF_UNIX, unix_socket.SOCK_STREAM) as duplicate:
        raw = duplicate.getsockopt(unix_socket.SOL_SOCKET, unix_socket.SO_PEERCRED, _UCRED.size)
    _pid, uid, _gid = _UCRED.unpack(raw)
    return int(uid)


def check_peer(local: QLocalSocket) -> None:
    """Raise ForeignPeerError unless the other end of ``local`` runs as this user (or the platform cannot tell)."""
    try:
        uid = peer_uid(local)
    except OSError as exc:
        raise ForeignPeerError(f"cannot tell who is at the other end of the single-instance socket: {exc}") from exc
    own = current_uid()
    if uid is not None and uid != own:
        raise ForeignPeerError(
            f"the other end of the single-instance socket runs as another user (uid {uid}, not {own})"
        )


def check_socket_file(name: str) -> None:
    """Refuse what sits at the socket's path if this user did not make it: another user's file is never connected
    to, removed or replaced. Raises ForeignPeerError (another owner) or SingleInstanceError (not a socket)."""
    path = Path(name)
    if not path.is_absolute():
        return  # a Windows pipe name
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    own = current_uid()
    if own is not None and info.st_uid != own:
        raise ForeignPeerError(f"{path} belongs to another user (uid {info.st_uid}, not {own})")
    if not stat.S_ISSOCK(info.st_mode):
        raise SingleInstanceError(f"{path} is not a socket; remove it")


def resolve_model_ref(model: str | None, cwd: Path) -> str | None:
    """A ``--model`` value as the running app must see it: folders made absolute against the launch's folder."""
    if model is None or is_builtin(model):
        return model
    path = Path(model).expanduser()
    return str(path if path.is_absolute() else cwd / path)


def forward(request: ActivationRequest, name: str, timeout_ms: int = ANSWER_TIMEOUT_MS) -> bool | None:
    """Hand ``request`` to a running instance listening on ``name``.

    Returns True when it acknowledged, None when nobody listens there (so this launch is the first), and False when
    something accepted the connection but did not answer (a hung instance). Raises ForeignPeerError, before a byte
    is sent, when the socket file or the listening process belongs to another user. Blocking; needs no running
    event loop.
    """
    check_socket_file(name)
    socket = QLocalSocket()
    socket.connectToServer(name)
    if not socket.waitForConnected(CONNECT_TIMEOUT_MS):
        return None
    try:
        check_peer(socket)
        socket.write(request.to_bytes())
        if not socket.waitForBytesWritten(timeout_ms):
            return False
        answer = b""
        while _ACK not in answer and socket.waitForReadyRead(timeout_ms):
            answer += bytes(socket.readAll().data())
        return answer.startswith(_ACK)
    finally:
        socket.abort()


class SingleInstance(QObject):
    """The first instance's end: listens for later launches and emits :attr:`activation_requested` for each."""

    activation_requested = Signal(ActivationRequest)

    def __init__(self, name: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = server_name() if name is None else name
        # Why this launch runs without the guard, in words for the user (None while all is well): see claim().
        self.problem: str | None = None
        self._server = QLocalServer(self)
        # Only this user may connect (the runtime dir is private anyway; this covers the temp-folder fallback).
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._accept)
        self._buffers: dict[QLocalSocket, bytes] = {}

    def listen(self) -> None:
        """Start listening; a socket left by a crashed instance is removed first. Raises SingleInstanceError."""
        check_socket_file(self.name)  # another user's file is neither connected to nor removed
        # Probe first: on Unix, Qt's listen() may replace a live instance's socket file instead of failing.
        probe = QLocalSocket()
        probe.connectToServer(self.name)
        alive = probe.waitForConnected(CONNECT_TIMEOUT_MS)
        try:
            if alive:
                check_peer(probe)
        finally:
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
            try:
                check_peer(socket)
            except ForeignPeerError as exc:
                logger.warning("single-instance socket: refused a connection: %s", exc)
                socket.abort()
                socket.deleteLater()
                continue
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
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors too; nothing deeper
            logger.warning("single-instance socket: ignored a malformed request: %s", exc)
            socket.abort()
            return
        socket.write(_ACK)
        socket.flush()
        logger.info("another launch asked to come to the front (model=%s)", request.model)
        self.activation_requested.emit(request)


def claim(request: ActivationRequest, name: str | None = None, parent: QObject | None = None) -> SingleInstance | None:
    """Become the single instance, or hand ``request`` to the one already running.

    Returns None only when a running instance of this user took the request (this launch should exit). Otherwise
    returns this launch's :class:`SingleInstance`: listening if the socket could be claimed; if it could not (a
    hung instance, a socket folder or socket of another user, an unusable folder) the app still starts, only
    without the single-instance guard, and :attr:`SingleInstance.problem` says why (also logged).
    """
    try:
        name = server_name() if name is None else name
        answered = forward(request, name)
    except SingleInstanceError as exc:
        return _unguarded(name or "", parent, f"{exc}")
    if answered:
        logger.debug("handed the request to the running instance at %s", name)  # the user is told by app.main
        return None
    instance = SingleInstance(name, parent)
    if answered is False:
        instance.problem = f"another gpt-oss desktop holds {name} but does not answer; this window runs separately"
        logger.warning("%s", instance.problem)
        return instance
    try:
        instance.listen()
    except SingleInstanceError as exc:
        instance.problem = f"started without the single-instance guard: {exc}"
        logger.warning("%s", instance.problem)
    return instance


def _unguarded(name: str, parent: QObject | None, why: str) -> SingleInstance:
    instance = SingleInstance(name, parent)
    instance.problem = f"started without the single-instance guard: {why}"
    logger.warning("%s", instance.problem)
    return instance


def bring_to_front(window: QWidget) -> None:
    """Show ``window`` un-minimised on top and ask for focus (Wayland may only flash it in the task bar)."""
    state = window.windowState() & ~Qt.WindowState.WindowMinimized
    window.setWindowState(state | Qt.WindowState.WindowActive)
    window.show()
    window.raise_()
    window.activateWindow()
