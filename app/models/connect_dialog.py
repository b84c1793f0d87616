"""Model ▸ Connect to a server…: choose a kind of server (a preset fills its URL), give the key and the model (listed
by the server's ``GET /v1/models``), test each step, save the connection and connect.

Network work runs on the window's event loop (qasync) through the engine's :class:`RemoteClient`; the dialog never
blocks. Every failure is a line in the dialog (the engine's message says what to do), never a traceback. The key
field is masked; the key goes to :class:`~app.backends.api_keys.KeyStore` only, never to the settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.backends.api_keys import KeySource, MissingKey
from gpt_oss_desktop.app.backends.remote_presets import PRESETS, Preset, PresetId, preset
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.engine.remote.client import RemoteClient
from gpt_oss_desktop.engine.remote.connection import RemoteConnection
from gpt_oss_desktop.engine.remote.errors import AuthRejected, RemoteError
from gpt_oss_desktop.engine.remote.report import CheckStatus, ConnectionReport

T = TypeVar("T")

logger = logging.getLogger(__name__)

ClientFactory = Callable[[RemoteConnection], RemoteClient]

# A model id to list models with before one is chosen (GET /models names no model).
_ANY_MODEL: Final = "-"

_PRESET_URLS: Final = frozenset({"", *(kind.base_url for kind in PRESETS)})
_PRESET_NAMES: Final = frozenset({"", *(kind.label for kind in PRESETS)})
_PRESET_MODELS: Final = frozenset({"", *(kind.suggested_model for kind in PRESETS)})

_KEY_SOURCES: Final = (
    (KeySource.KEYRING, "Remember in the system keyring"),
    (KeySource.ENV, "Read from an environment variable"),
    (KeySource.ASK, "Ask once each time the app starts"),
    (KeySource.NONE, "No key (a local server)"),
)
# What the API key field says when it is empty: why it cannot be typed in, for the sources that read no typed key.
_KEY_PLACEHOLDERS: Final = {
    KeySource.KEYRING: "",
    KeySource.ASK: "",
    KeySource.ENV: "not used: the key is read from the variable below",
    KeySource.NONE: "not used: this server needs no key",
}


class ConnectDialog(QDialog):
    """Edit or create a saved connection.

    Signals:
        connect_requested(str): the saved connection's name, after Connect (it was saved first).
        saved(str): a connection was saved under this name, or forgotten.

    Attributes (tests await them): ``refresh_task`` and ``test_task``, the running Refresh and Test connection.
    """

    connect_requested = Signal(str)
    saved = Signal(str)

    def __init__(
        self,
        servers: SavedServers,
        parent: QWidget | None = None,
        *,
        editing: SavedConnection | None = None,
        client_factory: ClientFactory | None = None,
    ) -> None:
        super().__init__(parent)
        self.servers = servers
        self._editing = editing
        self._client_factory: ClientFactory = client_factory or RemoteClient
        self.refresh_task: asyncio.Task[None] | None = None
        self.test_task: asyncio.Task[None] | None = None
        self.setWindowTitle("Connect to a server")
        self.setMinimumWidth(560)

        self.preset_box = QComboBox(self)
        for kind in PRESETS:
            self.preset_box.addItem(kind.label, kind.id.value)
        self.preset_box.setAccessibleName("Kind of server")
        self.name_edit = QLineEdit(self)
        self.name_edit.setAccessibleName("Connection name")
        self.url_edit = QLineEdit(self)
        self.url_edit.setAccessibleName("Base URL")
        self.url_edit.setPlaceholderText("http://host:port/v1")
        self.key_source_box = QComboBox(self)
        for source, text in _KEY_SOURCES:
            self.key_source_box.addItem(text, source.value)
        self.key_source_box.setAccessibleName("Where the API key comes from")
        self.key_edit = QLineEdit(self)
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setAccessibleName("API key")
        self.env_edit = QLineEdit(self)
        self.env_edit.setAccessibleName("Environment variable holding the key")
        self.env_edit.setPlaceholderText("e.g. OPENROUTER_API_KEY")
        self.key_note = QLabel(self)
        self.key_note.setWordWrap(True)
        self.model_box = QComboBox(self)
        self.model_box.setEditable(True)
        self.model_box.setAccessibleName("Model")
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setToolTip("List the models the server offers (GET /v1/models)")
        self.refresh_button.clicked.connect(self.refresh_models)
        model_row = QHBoxLayout()
        model_row.addWidget(self.model_box, 1)
        model_row.addWidget(self.refresh_button)

        form = QFormLayout()
        form.addRow("Server", self.preset_box)
        form.addRow("Name", self.name_edit)
        form.addRow("Base URL", self.url_edit)
        form.addRow("API key from", self.key_source_box)
        form.addRow("API key", self.key_edit)
        form.addRow("Variable", self.env_edit)
        form.addRow("", self.key_note)
        form.addRow("Model", model_row)
        self._form = form

        self.test_button = QPushButton("Test connection", self)
        self.test_button.clicked.connect(self.test_connection)
        self.checks = QListWidget(self)
        self.checks.setAccessibleName("Connection test results")
        self.checks.setMaximumHeight(150)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Status")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.buttons = QDialogButtonBox(self)
        self.save_button = self.buttons.addButton("Save", QDialogButtonBox.ButtonRole.ApplyRole)
        self.connect_button = self.buttons.addButton("Connect", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.forget_button = self.buttons.addButton("Forget", QDialogButtonBox.ButtonRole.DestructiveRole)
        self.forget_button.setToolTip("Delete this saved connection and its stored key")
        self.forget_button.setVisible(editing is not None)
        self.forget_button.clicked.connect(self.forget)
        self.save_button.clicked.connect(self.save)
        self.connect_button.clicked.connect(self.save_and_connect)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.checks)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)

        self.preset_box.currentIndexChanged.connect(lambda _i: self._apply_preset())
        self.key_source_box.currentIndexChanged.connect(lambda _i: self._update_key_fields())
        if editing is not None:
            self._show(editing)
        else:
            self._apply_preset()

    # -- the form -------------------------------------------------------------------------------------------------

    @property
    def preset(self) -> Preset:
        return preset(str(self.preset_box.currentData()))

    @property
    def key_source(self) -> KeySource:
        return KeySource(str(self.key_source_box.currentData()))

    def set_preset(self, preset_id: PresetId) -> None:
        self.preset_box.setCurrentIndex(self.preset_box.findData(preset_id.value))

    def set_key_source(self, source: KeySource) -> None:
        self.key_source_box.setCurrentIndex(self.key_source_box.findData(source.value))

    def _apply_preset(self) -> None:
        """A preset fills the URL, a name, where the key comes from and a suggested model (fields the user typed
        over keep what they typed)."""
        kind = self.preset
        # What a preset filled in (any preset's value) is replaced; what the user typed is kept.
        if self.url_edit.text() in _PRESET_URLS:
            self.url_edit.setText(kind.base_url)
        if self.name_edit.text() in _PRESET_NAMES:
            self.name_edit.setText(kind.label if kind.id is not PresetId.CUSTOM else "")
        if self.model_box.currentText() in _PRESET_MODELS:
            self.model_box.setEditText(kind.suggested_model)
        self.set_key_source(KeySource.KEYRING if kind.needs_key else KeySource.NONE)
        if kind.key_env_var and not self.env_edit.text():
            self.env_edit.setPlaceholderText(kind.key_env_var)
        self._update_key_fields()

    def _show(self, saved: SavedConnection) -> None:
        self.set_preset(saved.preset)
        self.name_edit.setText(saved.name)
        self.url_edit.setText(saved.base_url)
        self.model_box.setEditText(saved.model)
        self.set_key_source(saved.key_source)
        self.env_edit.setText(saved.env_var)
        self._update_key_fields()

    def _update_key_fields(self) -> None:
        """Only the field the chosen source reads can be typed in; the other is greyed out, empty of a key, and
        says why (a key typed there would be neither used nor saved)."""
        source = self.key_source
        typed_key = source in (KeySource.KEYRING, KeySource.ASK)
        self.key_edit.setEnabled(typed_key)
        self.env_edit.setEnabled(source is KeySource.ENV)
        if not typed_key:
            self.key_edit.clear()
        self.key_edit.setPlaceholderText(_KEY_PLACEHOLDERS[source])
        note = ""
        if source is KeySource.KEYRING and not self.servers.keys.available:
            note = self.servers.keys.unavailable_reason or ""
        elif source is KeySource.ASK:
            note = "The key is kept in memory and asked again the next time the app starts."
        elif source is KeySource.KEYRING and self._editing is not None and not self.key_edit.text():
            note = "Leave the key empty to keep the one stored in the keyring."
        self.key_note.setText(note)
        self.key_note.setVisible(bool(note))

    def focus_key(self, message: str) -> None:
        """Show ``message`` and put the cursor in the key field (the server rejected the key: re-enter it here)."""
        self.show_status(message, error=True)
        if self.key_source in (KeySource.NONE, KeySource.ENV):
            self.set_key_source(KeySource.KEYRING)  # the server wants a key: make room to type it
        self.key_edit.clear()
        self.key_edit.setFocus()

    def set_models(self, models: list[str], message: str = "") -> None:
        """Offer ``models`` (what the server lists), keeping the chosen one when it is among them."""
        chosen = self.model_box.currentText()
        self.model_box.clear()
        self.model_box.addItems(models)
        self.model_box.setEditText(chosen if chosen in models or not models else models[0])
        if message:
            self.show_status(message, error=True)

    def show_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setProperty("error", error)
        self.status.setStyleSheet("color: palette(link);" if not error else "color: #c0392b;")

    # -- what the form describes ----------------------------------------------------------------------------------

    def connection(self) -> SavedConnection:
        """The connection the form describes. Raises ValueError with what to fix."""
        model = self.model_box.currentText().strip()
        if not model:
            raise ValueError("choose a model (Refresh lists the ones the server offers)")
        return SavedConnection(
            name=self.name_edit.text().strip(),
            preset=self.preset.id,
            base_url=self.url_edit.text().strip(),
            model=model,
            key_source=self.key_source,
            # The variable's name is kept only where the key comes from it (the field is disabled otherwise).
            env_var=self.env_edit.text().strip() if self.key_source is KeySource.ENV else "",
        )

    def _key(self) -> str | None:
        """The key to try: the one typed, else the one known for the connection being edited."""
        source = self.key_source
        typed = self.key_edit.text().strip()
        if source is KeySource.NONE:
            return None
        if source is KeySource.ENV:
            return self.servers.keys.key_for("", KeySource.ENV, self.env_edit.text().strip())
        if typed:
            return typed
        if self._editing is not None:
            return self.servers.keys.key_for(self._editing.name, self._editing.key_source, self._editing.env_var)
        return None

    def _remote(self, model: str | None = None) -> RemoteConnection:
        kind = self.preset
        return RemoteConnection(
            base_url=self.url_edit.text().strip(),
            model=model or self.model_box.currentText().strip() or _ANY_MODEL,
            api_key=self._key(),
            reasoning_style=kind.reasoning_style,
            send_reasoning_back=kind.send_reasoning_back,
            max_retries=0,  # a dialog answers at once; the chat retries
        )

    # -- actions --------------------------------------------------------------------------------------------------

    def refresh_models(self) -> asyncio.Task[None]:
        """List the server's models into the model box."""
        self.refresh_task = asyncio.ensure_future(self._refresh())
        return self.refresh_task

    async def _refresh(self) -> None:
        self.refresh_button.setEnabled(False)
        self.show_status("Asking the server for its models…")
        try:
            models = await self._ask(self._remote(_ANY_MODEL), lambda client: client.list_models())
        except (RemoteError, MissingKey, ValueError) as exc:
            self._failed(exc)
            return
        finally:
            self.refresh_button.setEnabled(True)
        self.set_models(models)
        self.show_status(f"The server offers {len(models)} model{'s' if len(models) != 1 else ''}.")

    def test_connection(self) -> asyncio.Task[None]:
        """Run the client's checks, one line each."""
        self.test_task = asyncio.ensure_future(self._test())
        return self.test_task

    async def _test(self) -> None:
        self.test_button.setEnabled(False)
        self.checks.clear()
        self.show_status("Testing…")
        try:
            report = await self._ask(self._remote(), lambda client: client.check())
        except (RemoteError, MissingKey, ValueError) as exc:
            self._failed(exc)
            return
        finally:
            self.test_button.setEnabled(True)
        self.show_report(report)

    async def _ask(self, remote: RemoteConnection, question: Callable[[RemoteClient], Awaitable[T]]) -> T:
        """One question to the server through a client made for it (and closed after)."""
        client = self._client_factory(remote)
        try:
            return await question(client)
        finally:
            await client.aclose()

    def show_report(self, report: ConnectionReport) -> None:
        self.checks.clear()
        for step in report.steps:
            item = QListWidgetItem(step.line())
            item.setData(Qt.ItemDataRole.UserRole, step.status.value)
            if step.status is CheckStatus.FAILED:
                item.setForeground(QColor("#c0392b"))
            elif step.status is CheckStatus.SKIPPED:
                item.setForeground(QColor("#808080"))
            self.checks.addItem(item)
        if report.models:
            self.set_models(list(report.models))
        failed = [step for step in report.steps if step.status is CheckStatus.FAILED]
        if not failed:
            self.show_status("Every check passed.")
        elif failed[0].name == "authorised":
            self.focus_key(f"The server did not accept the key: {failed[0].detail}. Enter it again.")
        else:
            self.show_status(f"{failed[0].name}: {failed[0].detail}", error=True)

    def _failed(self, exc: Exception) -> None:
        if isinstance(exc, AuthRejected):
            self.focus_key(str(exc))
        else:
            self.show_status(str(exc), error=True)

    def save(self) -> SavedConnection | None:
        """Save the connection (its key to the key store); None, with the reason shown, if the form is incomplete."""
        try:
            saved = self.connection()
        except ValueError as exc:
            self.show_status(str(exc), error=True)
            return None
        typed = self.key_edit.text().strip()
        if saved.key_source is KeySource.KEYRING and not typed and self._editing is None:
            self.focus_key("Enter the API key (or choose where it comes from).")
            return None
        self.servers.save(saved, replacing=self._editing.name if self._editing is not None else None)
        message = f"Saved {saved.name}."
        if typed and saved.key_source in (KeySource.KEYRING, KeySource.ASK):
            remembered = self.servers.keys.remember(saved.name, typed, saved.key_source)
            if saved.key_source is KeySource.KEYRING and not remembered:
                message += " " + (self.servers.keys.unavailable_reason or "The key is kept for this run only.")
        self.key_edit.clear()
        self._editing = saved
        self.forget_button.show()
        self.show_status(message)
        self.saved.emit(saved.name)
        return saved

    def forget(self) -> None:
        """Delete the connection being edited, and its key from the keyring."""
        if self._editing is None:
            return
        name = self._editing.name
        self.servers.delete(name)
        self._editing = None
        self.forget_button.hide()
        self.show_status(f"Forgot {name} and its key.")
        self.saved.emit(name)  # the menu of saved servers is rebuilt

    def save_and_connect(self) -> None:
        saved = self.save()
        if saved is None:
            return
        self.accept()
        self.connect_requested.emit(saved.name)
