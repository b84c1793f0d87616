"""Fixtures of the remote-server window tests: a data folder of the test's own, saved servers whose keys go to a
file keyring outside it (as the OS keyring is), and a window whose Model menu connects to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from gpt_oss_desktop.app.backends.api_keys import KeyStore
from gpt_oss_desktop.app.backends.backend_switch import SwitchableBackend
from gpt_oss_desktop.app.backends.remote_backend import RemoteBackend
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.models import server_connections
from gpt_oss_desktop.app.models.saved_servers import SavedServers
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from tests.app.backends.test_api_keys import file_keyring
from tests.app.conftest import scripted_engine


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def servers(settings: QSettings, tmp_path: Path) -> SavedServers:
    keyring_folder = tmp_path / "keyring"  # outside the data folder, as the OS keyring is
    keyring_folder.mkdir()
    return SavedServers(settings, KeyStore(file_keyring(keyring_folder)))


def remote_window(make_window: Any, servers: SavedServers, store: ChatStore | None = None, **options: Any) -> Any:
    """A window (``options`` go to it) whose Model menu connects to ``servers``."""
    local, _ = scripted_engine([1])
    backend = SwitchableBackend(local, RemoteBackend(servers.resolve))
    window = make_window(backend, store=store, **options)
    menu = QMenu("Model", window)
    window.connections = server_connections.attach(window, menu, backend, servers, load=window.load_model)
    return window
