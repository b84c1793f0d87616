"""Model ▸ Serve on localhost: the loaded model over the OpenAI-compatible API, its URL in the status bar, and a log
pane of the requests that reach it from outside.

:func:`attach` is the main window's one call. The server itself is the engine's (engine/server), started by a
:class:`~app.backends.chat_backend.ServingBackend` on the model the app already holds: no second copy. It listens on
127.0.0.1 only (other machines cannot reach it), on the port saved under ``server/port`` (8000 by default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from PySide6.QtCore import QObject, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMenu, QPlainTextEdit

from gpt_oss_desktop.app.backends.chat_backend import ChatBackend, ModelInfo, RequestError, ServingBackend
from gpt_oss_desktop.app.settings import SERVER_PORT_KEY
from gpt_oss_desktop.engine.server.config import DEFAULT_PORT, ServerConfig
from gpt_oss_desktop.engine.server.request_log import RequestRecord

logger = logging.getLogger(__name__)

_LOG_LINES: Final = 2000  # the pane keeps the latest requests only


def format_record(record: RequestRecord, when: float | None = None) -> str:
    """One log line: time, request, status, duration, tokens (reasoning apart) and the client's address."""
    stamp = time.strftime("%H:%M:%S", time.localtime(when if when is not None else time.time()))
    line = f"{stamp}  {record.method} {record.path}  {record.status}  {record.seconds:.2f} s"
    if record.prompt_tokens is not None and record.completion_tokens is not None:
        line += f"  {record.prompt_tokens} → {record.completion_tokens} tokens"
        if record.reasoning_tokens:
            line += f" ({record.reasoning_tokens} reasoning)"
    return f"{line}  from {record.client}"


class _RecordBridge(QObject):
    """Carries records from the server's thread to the GUI thread (a queued signal)."""

    # object: a RequestRecord (a frozen dataclass, which a Signal cannot declare as its type)
    logged = Signal(object)


class ServeControl(QObject):
    """The Serve action, the URL label and the log pane, kept in step with the backend.

    Signals:
        serving_changed(str): the base URL when serving starts, "" when it stops.
    """

    serving_changed = Signal(str)

    def __init__(self, window: QMainWindow, backend: ChatBackend, settings: QSettings, menu: QMenu) -> None:
        super().__init__(window)
        self._window = window
        self._backend = backend
        self._settings = settings
        self._task: asyncio.Task[None] | None = None
        self.action = QAction("&Serve on localhost", window)
        self.action.setCheckable(True)
        self.action.setToolTip(
            "Let other programs on this computer use the loaded model through an OpenAI-compatible API"
        )
        self.action.toggled.connect(self._toggled)
        menu.addSeparator()
        menu.addAction(self.action)
        self.copy_action = QAction("&Copy the server's URL", window)
        self.copy_action.triggered.connect(self.copy_url)
        menu.addAction(self.copy_action)
        self.url_label = QLabel(window)
        self.url_label.setAccessibleName("Server address")
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.url_label.setContentsMargins(6, 0, 6, 0)
        self.url_label.hide()
        window.statusBar().addPermanentWidget(self.url_label)
        self.log = QPlainTextEdit(window)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(_LOG_LINES)
        self.log.setAccessibleName("Server requests")
        self.log.setPlaceholderText("Requests from other programs appear here.")
        self.dock = QDockWidget("Server log", window)
        self.dock.setObjectName("server-log")
        self.dock.setWidget(self.log)
        window.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.dock)
        self.dock.hide()
        self._bridge = _RecordBridge(self)
        self._bridge.logged.connect(self._append)
        self.refresh()

    @property
    def url(self) -> str | None:
        return self._backend.server_url if isinstance(self._backend, ServingBackend) else None

    @property
    def port(self) -> int:
        """The saved port (``server/port``), or 8000 when none or an unusable one is saved."""
        saved = self._settings.value(SERVER_PORT_KEY, DEFAULT_PORT)
        try:
            port = int(str(saved))
        except ValueError:
            return DEFAULT_PORT
        return port if 0 <= port <= 65535 else DEFAULT_PORT

    def refresh(self, _info: ModelInfo | None = None) -> None:
        """Match the backend: the action is usable with a model loaded; checked while serving."""
        serving = self.url is not None
        can_serve = isinstance(self._backend, ServingBackend) and self._backend.info is not None
        # A backend that switches between a local model and a remote server (app/backends/backend_switch.py) serves
        # only the local one.
        can_serve = can_serve and bool(getattr(self._backend, "can_serve", True))
        self.action.setEnabled(can_serve and (self._task is None or self._task.done()))
        self.action.blockSignals(True)
        self.action.setChecked(serving)
        self.action.blockSignals(False)
        self.copy_action.setEnabled(serving)
        self.url_label.setVisible(serving)
        if serving:
            self.url_label.setText(f"Serving at {self.url}")
            self.url_label.setToolTip("OpenAI-compatible API of the loaded model (Model ▸ Copy the server's URL)")

    def copy_url(self) -> None:
        if self.url is not None:
            QGuiApplication.clipboard().setText(self.url)

    def start(self) -> asyncio.Task[None]:
        """Start serving (as checking the action does); the task ends once the server runs or failed to start."""
        self._task = asyncio.ensure_future(self._start())
        self.refresh()
        return self._task

    def stop(self) -> asyncio.Task[None]:
        self._task = asyncio.ensure_future(self._stop())
        self.refresh()
        return self._task

    def _toggled(self, checked: bool) -> None:
        if checked:
            self.start()
        else:
            self.stop()

    async def _start(self) -> None:
        backend = self._backend
        assert isinstance(backend, ServingBackend)
        try:
            url = await backend.start_server(ServerConfig(port=self.port), self._bridge.logged.emit)
        except RequestError as exc:
            self._window.statusBar().showMessage(f"Could not serve the model: {exc}", 10000)
            logger.warning("could not start the server: %s", exc)
            url = ""
        finally:
            self._task = None
            self.refresh()
        if url:
            self.dock.show()
            # A few lines of log, not half the window: the chat stays the main thing on screen.
            self._window.resizeDocks([self.dock], [140], Qt.Orientation.Vertical)
            self._window.statusBar().showMessage(f"Serving the model at {url}", 5000)
        self.serving_changed.emit(url)

    async def _stop(self) -> None:
        backend = self._backend
        assert isinstance(backend, ServingBackend)
        try:
            await backend.stop_server()
        finally:
            self._task = None
            self.refresh()
        self.serving_changed.emit("")

    def _append(self, record: object) -> None:
        assert isinstance(record, RequestRecord)
        self.log.appendPlainText(format_record(record))


def attach(window: QMainWindow, backend: ChatBackend, settings: QSettings, menu: QMenu) -> ServeControl:
    return ServeControl(window, backend, settings, menu)
