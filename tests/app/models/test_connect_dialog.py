"""Model ▸ Connect to a server…: presets fill the form, the key is masked and goes to the keyring (never the
settings), saved connections appear under Model. The server-facing parts (Refresh, Test connection, connecting) run
against the app's own server in test_remote_servers.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QLineEdit, QMainWindow, QMenu

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore
from gpt_oss_desktop.app.backends.backend_switch import SwitchableBackend
from gpt_oss_desktop.app.backends.remote_backend import RemoteBackend
from gpt_oss_desktop.app.backends.remote_presets import PRESETS, PresetId, preset
from gpt_oss_desktop.app.backends.saved_connection import SavedConnection
from gpt_oss_desktop.app.models import server_connections
from gpt_oss_desktop.app.models.connect_dialog import ConnectDialog
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from tests.app.backends.test_api_keys import KEY, file_keyring
from tests.app.conftest import scripted_engine


@pytest.fixture
def servers(settings: QSettings, tmp_path: Path) -> SavedServers:
    return SavedServers(settings, KeyStore(file_keyring(tmp_path)))


def test_presets_fill_the_url_and_the_key_source(qtbot: Any, servers: SavedServers) -> None:
    dialog = ConnectDialog(servers)
    qtbot.addWidget(dialog)
    for kind in PRESETS:
        dialog.set_preset(kind.id)
        assert dialog.url_edit.text() == kind.base_url, kind.id
        assert dialog.key_source is (KeySource.KEYRING if kind.needs_key else KeySource.NONE)
        assert dialog.key_edit.isEnabled() is kind.needs_key
    dialog.set_preset(PresetId.VLLM)
    assert dialog.model_box.currentText() == "openai/gpt-oss-120b"
    dialog.url_edit.setText("http://gpu-box:8000/v1")  # typed by the user: a preset change keeps it
    dialog.set_preset(PresetId.SGLANG)
    assert dialog.url_edit.text() == "http://gpu-box:8000/v1"
    assert dialog.key_edit.echoMode() is QLineEdit.EchoMode.Password


def test_save_puts_the_key_in_the_keyring_only(qtbot: Any, servers: SavedServers, settings: QSettings) -> None:
    dialog = ConnectDialog(servers)
    qtbot.addWidget(dialog)
    dialog.set_preset(PresetId.OPENROUTER)
    assert dialog.save() is None  # no key yet: it asks for one in place
    assert dialog.key_edit.hasFocus() or "key" in dialog.status.text().lower()
    dialog.key_edit.setText(KEY)
    saved = dialog.save()
    assert saved is not None and saved.name == "OpenRouter" and saved.key_source is KeySource.KEYRING
    assert dialog.key_edit.text() == ""  # not kept in the widget
    assert servers.resolve("OpenRouter").api_key == KEY
    settings.sync()
    assert KEY not in Path(settings.fileName()).read_text()


def test_without_a_keyring_the_dialog_says_why(qtbot: Any, settings: QSettings) -> None:
    servers = SavedServers(settings, KeyStore(keyring.backends.fail.Keyring()))
    dialog = ConnectDialog(servers)
    qtbot.addWidget(dialog)
    dialog.set_preset(PresetId.GROQ)
    assert not dialog.key_note.isHidden() and "memory" in dialog.key_note.text()
    dialog.key_edit.setText(KEY)
    assert dialog.save() is not None
    assert "memory" in dialog.status.text()
    assert servers.resolve("Groq").api_key == KEY


def test_connect_emits_the_saved_name(qtbot: Any, servers: SavedServers) -> None:
    dialog = ConnectDialog(servers)
    qtbot.addWidget(dialog)
    dialog.set_preset(PresetId.THIS_APP)
    dialog.model_box.setEditText("demo")
    with qtbot.waitSignal(dialog.connect_requested) as emitted:
        dialog.connect_button.click()
    assert emitted.args == [preset(PresetId.THIS_APP).label]
    assert servers.get(preset(PresetId.THIS_APP).label) is not None


def test_saved_servers_appear_under_model(qtbot: Any, servers: SavedServers) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    menu = QMenu("Model", window)
    local, _model = scripted_engine([1])
    backend = SwitchableBackend(local, RemoteBackend(servers.resolve))
    loads: list[str] = []
    try:
        connections = server_connections.attach(window, menu, backend, servers, load=loads.append)
        assert connections.servers_menu is not None
        servers.save(SavedConnection("box", PresetId.VLLM, "http://box:8000/v1", "openai/gpt-oss-120b"))
        connections.rebuild_menu()
        texts = [action.text() for action in connections.servers_menu.actions()]
        assert "openai/gpt-oss-120b @ box" in texts
        next(a for a in connections.servers_menu.actions() if a.text() == "openai/gpt-oss-120b @ box").trigger()
        assert loads == ["server:box"]
        # A connection whose key is not known yet asks for it (masked) before connecting.
        servers.save(SavedConnection("hosted", PresetId.GROQ, "https://api.groq.com/openai/v1", "m", KeySource.KEYRING))
        connections.connect_to("hosted")
        prompt = connections.key_prompt
        assert prompt is not None and prompt.key_edit.echoMode() is QLineEdit.EchoMode.Password
        prompt.key_edit.setText(KEY)
        prompt._accept()
        assert loads == ["server:box", "server:hosted"]
        assert servers.resolve("hosted").api_key == KEY
    finally:
        backend.close()


def test_forget_deletes_the_connection_and_its_key(qtbot: Any, servers: SavedServers) -> None:
    servers.save(SavedConnection("hosted", PresetId.GROQ, "https://api.groq.com/openai/v1", "m", KeySource.KEYRING))
    servers.keys.remember("hosted", KEY, KeySource.KEYRING)
    dialog = ConnectDialog(servers, editing=servers.get("hosted"))
    qtbot.addWidget(dialog)
    assert dialog.url_edit.text() == "https://api.groq.com/openai/v1" and dialog.model_box.currentText() == "m"
    assert dialog.key_edit.text() == ""  # the stored key is never shown
    assert not dialog.forget_button.isHidden()
    with qtbot.waitSignal(dialog.saved):
        dialog.forget_button.click()
    assert servers.get("hosted") is None
    assert servers.keys.key_for("hosted", KeySource.KEYRING) is None


def test_only_the_field_the_key_source_reads_can_be_typed_in(qtbot: Any, servers: SavedServers) -> None:
    dialog = ConnectDialog(servers)
    qtbot.addWidget(dialog)
    dialog.set_preset(PresetId.OPENROUTER)
    dialog.key_edit.setText(KEY)
    dialog.env_edit.setText("OPENROUTER_API_KEY")
    assert dialog.key_edit.isEnabled() and not dialog.env_edit.isEnabled()

    dialog.set_key_source(KeySource.NONE)
    # "No key": neither field can be typed in, and the key typed before is gone rather than kept out of sight.
    assert not dialog.key_edit.isEnabled() and not dialog.env_edit.isEnabled()
    assert dialog.key_edit.text() == "" and "needs no key" in dialog.key_edit.placeholderText()
    assert dialog.connection().env_var == ""  # nor is the variable's name saved with a keyless connection

    dialog.set_key_source(KeySource.ENV)
    assert dialog.env_edit.isEnabled() and not dialog.key_edit.isEnabled()
    assert "variable" in dialog.key_edit.placeholderText()
    assert dialog.connection().env_var == "OPENROUTER_API_KEY"

    dialog.set_key_source(KeySource.ASK)
    assert dialog.key_edit.isEnabled() and not dialog.env_edit.isEnabled() and dialog.key_edit.placeholderText() == ""

    dialog.set_key_source(KeySource.NONE)
    saved = dialog.save()
    assert saved is not None and saved.key_source is KeySource.NONE
    assert servers.resolve(saved.name).api_key is None
    # Edited later, the saved keyless connection opens with the key field off.
    editing = ConnectDialog(servers, editing=saved)
    qtbot.addWidget(editing)
    assert editing.key_source is KeySource.NONE and not editing.key_edit.isEnabled()
