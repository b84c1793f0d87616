"""The Tools menu at startup: a settings file from an older version, with MCP header and environment values in plain
text, is rewritten without them (moved to a real file keyring, or, with no keyring, kept for this run and said in
the status bar); values the keyring does not take after Tool settings… are said there too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog, QMainWindow

from gpt_oss_desktop.app.backends.api_keys import SERVICE, KeyStore
from gpt_oss_desktop.app.settings import TOOLS_KEY
from gpt_oss_desktop.app.shell import tools_menu
from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
from gpt_oss_desktop.app.tools.mcp_servers import McpServers, read_configs
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.app.tools.tools_dialog import ToolsDialog
from gpt_oss_desktop.engine.tools.mcp_config import McpServerConfig
from tests.app.backends.test_api_keys import file_keyring

TOKEN = "ghp-startup-token-0f1e2d3c"
BEARER = "Bearer sk-startup-header-4b5a6978"
OLD_SERVERS = (
    # Switched off: the test is about the settings, not about starting npx.
    McpServerConfig(name="github", command=("npx", "server-github"), env={"GITHUB_TOKEN": TOKEN}, enabled=False),
    McpServerConfig(name="web", transport="http", url="https://mcp.example.com/mcp", headers={"Authorization": BEARER}),
)


def old_settings_file(settings: QSettings) -> Path:
    """The settings file as an older version wrote it: the values in plain text."""
    old = ToolSettings(mcp_servers=tuple(config.to_dict() for config in OLD_SERVERS))
    settings.setValue(TOOLS_KEY, old.to_json())
    settings.sync()
    path = Path(settings.fileName())
    assert TOKEN.encode() in path.read_bytes() and BEARER.encode() in path.read_bytes()
    return path


def start(qtbot: Any, settings: QSettings, secrets: McpSecrets) -> tools_menu.ToolsControl:
    """What app/main.py does at startup, up to the servers' start."""
    window = QMainWindow()
    qtbot.addWidget(window)
    servers = McpServers()
    tools = tools_menu.open_app_tools(settings, servers)
    return tools_menu.attach(window, tools, servers, secrets)


def test_an_older_settings_file_loses_its_values_to_the_keyring_at_startup(
    qtbot: Any, settings: QSettings, tmp_path: Path
) -> None:
    path = old_settings_file(settings)
    backend = file_keyring(tmp_path)
    control = start(qtbot, settings, McpSecrets(KeyStore(backend)))
    data = path.read_bytes()
    assert TOKEN.encode() not in data and BEARER.encode() not in data
    assert b"GITHUB_TOKEN" in data and b"Authorization" in data
    assert TOKEN in (backend.get_password(SERVICE, "mcp/github") or "")
    assert BEARER in (backend.get_password(SERVICE, "mcp/web") or "")
    assert control._window.statusBar().currentMessage() == ""  # nothing to tell
    # The next start reads the same servers back, values included.
    again = ToolSettings.from_json(QSettings(str(path), QSettings.Format.IniFormat).value(TOOLS_KEY))
    configs, problems = read_configs(again.mcp_servers, McpSecrets(KeyStore(file_keyring(tmp_path))))
    assert problems == [] and configs == list(OLD_SERVERS)


def test_without_a_keyring_the_values_work_this_run_and_the_status_bar_says_so(qtbot: Any, settings: QSettings) -> None:
    path = old_settings_file(settings)
    secrets = McpSecrets(KeyStore(keyring.backends.fail.Keyring()))
    control = start(qtbot, settings, secrets)
    assert TOKEN.encode() not in path.read_bytes() and BEARER.encode() not in path.read_bytes()
    configs, problems = read_configs(control.tools.settings.mcp_servers, secrets)
    assert problems == [] and configs == list(OLD_SERVERS)
    message = control._window.statusBar().currentMessage()  # one message for both servers: the bar shows one
    assert message.startswith("MCP servers 'github' (GITHUB_TOKEN), 'web' (Authorization): ")
    assert "memory until you quit" in message and BEARER not in message and TOKEN not in message


def test_values_the_keyring_does_not_take_after_tool_settings_are_said(
    qtbot: Any, settings: QSettings, monkeypatch: pytest.MonkeyPatch, loop: Any
) -> None:
    control = start(qtbot, settings, McpSecrets(KeyStore(keyring.backends.fail.Keyring())))
    server = McpServerConfig(name="off", command=("srv",), env={"API_KEY": TOKEN}, enabled=False)

    def edit_and_ok(dialog: ToolsDialog) -> QDialog.DialogCode:
        dialog._replace_server(None, server)
        dialog._accept()
        return QDialog.DialogCode(dialog.result())

    monkeypatch.setattr(ToolsDialog, "exec", edit_and_ok)
    control.open_settings()
    message = control._window.statusBar().currentMessage()
    assert message.startswith("MCP server 'off':") and "memory until you quit" in message
    assert TOKEN.encode() not in Path(settings.fileName()).read_bytes()
