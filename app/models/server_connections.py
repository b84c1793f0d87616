"""The window's remote servers: Model ▸ Connect to a server…, the saved connections under Model, the key prompt, and
the fixes a user can make in place when a server refuses (re-enter a rejected key, choose another model).

:func:`attach` is the main window's one call, after the window is built over a
:class:`~app.backends.backend_switch.SwitchableBackend` whose remote half resolves connections with the same
:class:`~app.models.saved_servers.SavedServers`::

    servers = SavedServers(settings)
    backend = SwitchableBackend(LocalEngine(), RemoteBackend(servers.resolve))
    window = MainWindow(backend, settings, ...)
    server_connections.attach(window, window.model_menu, backend, servers, load=window.load_model)

app/main.py does this.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.backends.api_keys import KeySource
from gpt_oss_desktop.app.backends.backend_switch import SwitchableBackend
from gpt_oss_desktop.app.backends.saved_connection import (
    SavedConnection,
    connection_name,
    is_server_ref,
    server_ref,
)
from gpt_oss_desktop.app.models.connect_dialog import ClientFactory, ConnectDialog
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.engine.remote.errors import AuthRejected, RemoteError, UnknownRemoteModel

logger = logging.getLogger(__name__)


class KeyPrompt(QDialog):
    """Asks for one connection's API key (masked), saying why it asks and, when the key cannot be remembered, why.

    Signals:
        key_entered(str): the key, after OK.
    """

    key_entered = Signal(str)

    def __init__(self, name: str, message: str, note: str | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"API key for {name}")
        self.message = QLabel(message, self)
        self.message.setWordWrap(True)
        self.note = QLabel(note or "", self)
        self.note.setWordWrap(True)
        self.note.setVisible(bool(note))
        self.key_edit = QLineEdit(self)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setAccessibleName("API key")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (self.message, self.key_edit, self.note, buttons):
            layout.addWidget(widget)

    def _accept(self) -> None:
        key = self.key_edit.text().strip()
        if not key:
            self.key_edit.setFocus()
            return
        self.key_edit.clear()  # the widget does not keep the key around
        self.accept()
        self.key_entered.emit(key)


class ServerConnections(QObject):
    """Owns the Connect dialog and key prompts of one window.

    Args:
        window: their parent; its status bar shows retry countdowns.
        backend: the window's backend (its remote half reports waits and refusals here).
        servers: the saved connections and keys.
        load: loads a model reference in the window (``MainWindow.load_model``).
        client_factory: for the dialog's Refresh and Test (tests wrap the real client).
    """

    def __init__(
        self,
        window: QMainWindow,
        backend: SwitchableBackend,
        servers: SavedServers,
        load: Callable[[str], object],
        *,
        client_factory: ClientFactory | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.backend = backend
        self.servers = servers
        self.load = load
        self.client_factory = client_factory
        self.dialog: ConnectDialog | None = None
        self.key_prompt: KeyPrompt | None = None
        self.servers_menu: QMenu | None = None
        backend.remote.on_notice = self._notice
        backend.remote.on_problem = self._problem

    # -- menu -------------------------------------------------------------------------------------------------

    def add_to_menu(self, menu: QMenu) -> None:
        """Model ▸ Connect to a server…, and a submenu of the saved connections (rebuilt each time it opens)."""
        menu.addSeparator()
        self.connect_action = QAction("Connect to a &server…", self.window)
        self.connect_action.setToolTip(
            "Use gpt-oss on vLLM, SGLang, Ollama, a hosted API or another OpenAI-compatible server"
        )
        self.connect_action.triggered.connect(lambda: self.open_dialog())
        menu.addAction(self.connect_action)
        self.servers_menu = menu.addMenu("Saved s&ervers")
        self.servers_menu.aboutToShow.connect(self.rebuild_menu)
        self.rebuild_menu()

    def rebuild_menu(self) -> None:
        menu = self.servers_menu
        if menu is None:
            return
        menu.clear()
        saved = self.servers.all()
        if not saved:
            empty = menu.addAction("No servers saved yet")
            empty.setEnabled(False)
            return
        for connection in saved:
            action = menu.addAction(f"{connection.model} @ {connection.name}")
            action.setToolTip(connection.base_url)
            action.setStatusTip(connection.base_url)
            action.triggered.connect(partial(self.connect_to, connection.name))
        menu.addSeparator()
        for connection in saved:
            edit = menu.addAction(f"Edit {connection.name}…")
            edit.triggered.connect(partial(self.open_dialog, connection))

    # -- connecting -------------------------------------------------------------------------------------------

    def connect_to(self, name: str) -> None:
        """Connect to saved connection ``name``, asking for its key first when it is not known yet."""
        saved = self.servers.get(name)
        if saved is None:
            self.window.statusBar().showMessage(f"No saved server is named {name}", 8000)
            self.rebuild_menu()
            return
        if self.servers.needs_key(name):
            self.ask_key(saved, f"Enter the API key for {saved.name} ({saved.base_url}).")
            return
        self.load(server_ref(name))

    def load_ref(self, model_ref: str) -> None:
        """Load any model reference as the window would, asking first for a saved server's key when it is not known
        (the last model at startup may be a server whose key is asked once per run)."""
        if is_server_ref(model_ref):
            self.connect_to(connection_name(model_ref))
        else:
            self.load(model_ref)

    def ask_key(self, saved: SavedConnection, message: str) -> KeyPrompt:
        """Ask for ``saved``'s key (non-blocking), remember it as the connection says, then connect."""
        note = None
        if saved.key_source is KeySource.ASK:
            note = "The key is kept in memory until you quit (this connection asks once per run)."
        elif not self.servers.keys.available:
            note = self.servers.keys.unavailable_reason
        if self.key_prompt is not None:
            self.key_prompt.close()
        prompt = KeyPrompt(saved.name, message, note, self.window)
        prompt.key_entered.connect(partial(self._key_entered, saved))
        self.key_prompt = prompt
        prompt.open()
        return prompt

    def _key_entered(self, saved: SavedConnection, key: str) -> None:
        source = saved.key_source if saved.key_source is not KeySource.NONE else KeySource.ASK
        remembered = self.servers.keys.remember(saved.name, key, source)
        if source is KeySource.KEYRING and not remembered:
            self.window.statusBar().showMessage(self.servers.keys.unavailable_reason or "", 10000)
        self.load(server_ref(saved.name))

    def open_dialog(self, editing: SavedConnection | None = None) -> ConnectDialog:
        if self.dialog is not None:
            self.dialog.close()
            self.dialog.deleteLater()
        dialog = ConnectDialog(self.servers, self.window, editing=editing, client_factory=self.client_factory)
        dialog.connect_requested.connect(self.connect_to)
        dialog.saved.connect(lambda _name: self.rebuild_menu())
        self.dialog = dialog
        dialog.show()
        return dialog

    # -- what the remote backend reports ----------------------------------------------------------------------

    def _notice(self, text: str) -> None:
        if text:
            self.window.statusBar().showMessage(text)
        else:
            self.window.statusBar().clearMessage()

    def _problem(self, name: str, error: RemoteError) -> None:
        """The server refused: offer the fix in place."""
        saved = self.servers.get(name)
        if saved is None:
            return
        if isinstance(error, AuthRejected):
            if saved.key_source in (KeySource.KEYRING, KeySource.ASK):
                self.ask_key(saved, f"{error}.")
            else:  # an environment variable, or no key at all: the dialog is where to change that
                self.open_dialog(saved).focus_key(str(error))
        elif isinstance(error, UnknownRemoteModel):
            self.open_dialog(saved).set_models(error.available, str(error))


def attach(
    window: QMainWindow,
    menu: QMenu,
    backend: SwitchableBackend,
    servers: SavedServers,
    *,
    load: Callable[[str], object],
    client_factory: ClientFactory | None = None,
) -> ServerConnections:
    """Add Connect to a server… and the saved servers to ``menu`` (the window's Model menu)."""
    connections = ServerConnections(window, backend, servers, load, client_factory=client_factory)
    connections.add_to_menu(menu)
    return connections
