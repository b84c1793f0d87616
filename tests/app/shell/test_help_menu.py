"""Help, the last menu: it stays last after the Tools menu arrives, and its Open data folder and Open log file open
the user data folder and the app's log with the desktop (or say in the status bar why not)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import QSettings, QUrl
from PySide6.QtGui import QDesktopServices

from gpt_oss_desktop.app.backends.api_keys import KeyStore
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.desktop.crash import APP_LOG_NAME
from gpt_oss_desktop.app.shell import tools_menu
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
from gpt_oss_desktop.app.tools.mcp_servers import McpServers
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from gpt_oss_desktop.engine.private_files import LOG_DIR_NAME


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "user-data"
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[QUrl]:
    """The URLs the desktop was asked to open (none is opened)."""
    urls: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: urls.append(url) or True)
    return urls


def menu_titles(window: MainWindow) -> list[str]:
    return [action.text() for action in window.menuBar().actions()]


def test_help_is_last_with_its_entries_and_stays_last_after_the_tools_menu(
    make_window: Any, settings: QSettings
) -> None:
    window = make_window(LocalEngine())
    assert menu_titles(window)[-1] == "&Help"
    entries = [action.text() for action in window.help.menu.actions() if not action.isSeparator()]
    assert entries == ["&Keyboard shortcuts…", "Open &data folder", "Open &log file", "&About gpt-oss desktop"]
    servers = McpServers()
    tools = tools_menu.open_app_tools(settings, servers)
    tools_menu.attach(window, tools, servers, McpSecrets(KeyStore(keyring.backends.fail.Keyring())))  # as main does
    assert menu_titles(window) == ["&Chat", "&Model", "&View", "&Tools", "&Help"]


def test_open_data_folder_opens_the_user_data_folder(make_window: Any, data_dir: Path, opened: list[QUrl]) -> None:
    data_dir.mkdir()
    window = make_window(LocalEngine())
    window.help.data_folder_action.trigger()
    assert opened == [QUrl.fromLocalFile(str(data_dir))]


def test_open_log_file_opens_the_apps_log(make_window: Any, data_dir: Path, opened: list[QUrl]) -> None:
    log = data_dir / LOG_DIR_NAME / APP_LOG_NAME
    log.parent.mkdir(parents=True)
    log.write_text("INFO started\n", encoding="utf-8")
    window = make_window(LocalEngine())
    window.help.log_action.trigger()
    assert opened == [QUrl.fromLocalFile(str(log))]


def test_a_missing_log_or_folder_is_said_in_the_status_bar_and_nothing_opens(
    make_window: Any, data_dir: Path, opened: list[QUrl]
) -> None:
    window = make_window(LocalEngine())
    window.help.data_folder_action.trigger()
    assert window.statusBar().currentMessage().startswith("There is no data folder yet")
    data_dir.mkdir()
    window.help.log_action.trigger()
    message = window.statusBar().currentMessage()
    assert message.startswith("There is no log file yet") and APP_LOG_NAME in message
    assert opened == []


def test_a_desktop_that_cannot_open_the_folder_is_said_too(
    make_window: Any, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir.mkdir()
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda _url: False)
    window = make_window(LocalEngine())
    assert window.help.open_data_folder() is False
    assert window.statusBar().currentMessage() == f"Could not open {data_dir}"
