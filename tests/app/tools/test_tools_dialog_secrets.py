"""Tool settings ▸ MCP servers with real widgets, a real settings file and a real file keyring (keyrings.alt, in the
test's folder): OK puts header and environment values in the keyring and only their names in the file; Cancel
touches nothing; a rename moves them, a removal deletes them; without a keyring the forms say the values last until
you quit, and the next run says which to enter again; a mistyped line is never echoed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keyring.backends.fail
import pytest
from keyrings.alt.file import PlaintextKeyring
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QCheckBox, QDialog, QDialogButtonBox, QLabel, QPushButton, QWidget

from gpt_oss_desktop.app.backends.api_keys import SERVICE, KeyStore
from gpt_oss_desktop.app.settings import TOOLS_KEY
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
from gpt_oss_desktop.app.tools.mcp_server_dialog import McpServerDialog
from gpt_oss_desktop.app.tools.mcp_servers import read_configs
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.app.tools.tools_dialog import ToolsDialog
from gpt_oss_desktop.engine.tools.mcp_config import McpServerConfig
from tests.app.backends.test_api_keys import file_keyring

TOKEN = "ghp-dialog-token-1a2b3c4d5e"
BEARER = "Bearer sk-dialog-header-6f7a8b9c"

Fill = Callable[[McpServerDialog], None]


def ok(dialog: QDialog) -> None:
    """Press the dialog's own OK (not a child dialog's)."""
    boxes = [box for box in dialog.findChildren(QDialogButtonBox) if box.parent() is dialog]
    boxes[0].button(QDialogButtonBox.StandardButton.Ok).click()


def answer_server_form(monkeypatch: pytest.MonkeyPatch, fill: Fill, seen: list[McpServerDialog] | None = None) -> None:
    """The next server forms are filled by ``fill`` and OK'd with their own button (instead of waiting modally)."""

    def exec_(form: McpServerDialog) -> QDialog.DialogCode:
        if seen is not None:
            seen.append(form)
        fill(form)
        ok(form)
        return QDialog.DialogCode(form.result())

    monkeypatch.setattr(McpServerDialog, "exec", exec_)


def add_github(form: McpServerDialog) -> None:
    form.name.setText("github")
    form.command.setText("npx -y server-github")
    form.env.setPlainText(f"GITHUB_TOKEN={TOKEN}\nMODE=ro")


def button(qtbot: Any, dialog: QWidget, text: str) -> QPushButton:
    """The one button labelled ``text``, once the rows a rebuild replaced are deleted (deleteLater)."""

    def matching() -> list[QPushButton]:
        return [b for b in dialog.findChildren(QPushButton) if b.text() == text]

    qtbot.waitUntil(lambda: len(matching()) == 1)
    return matching()[0]


def texts(dialog: QWidget) -> list[str]:
    return [label.text() for label in dialog.findChildren(QLabel)]


class Saved:
    """The tool settings as the app keeps them: one JSON value in a real settings file, written at each change."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings
        self.path = Path(settings.fileName())

    def save(self, changed: ToolSettings) -> None:
        self.settings.setValue(TOOLS_KEY, changed.to_json())
        self.settings.sync()

    def tools(self) -> AppTools:
        stored = QSettings(str(self.path), QSettings.Format.IniFormat).value(TOOLS_KEY)
        return AppTools(ToolSettings.from_json(stored if isinstance(stored, str) else None), save=self.save)


def open_dialog(qtbot: Any, tools: AppTools, secrets: McpSecrets) -> ToolsDialog:
    dialog = ToolsDialog(tools, secrets=secrets)
    qtbot.addWidget(dialog)
    return dialog


def accept(qtbot: Any, dialog: ToolsDialog, tools: AppTools) -> None:
    with qtbot.waitSignal(dialog.accepted):
        ok(dialog)
    tools.update(dialog.result_settings)  # as Tools ▸ Tool settings… does after OK


def keyring_values(backend: PlaintextKeyring, server: str) -> dict[str, Any] | None:
    text = backend.get_password(SERVICE, f"mcp/{server}")
    return None if text is None else json.loads(text)


def test_ok_puts_the_values_in_the_keyring_and_only_names_in_the_settings_file(
    qtbot: Any, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = file_keyring(tmp_path)
    saved = Saved(settings)
    tools = saved.tools()
    dialog = open_dialog(qtbot, tools, McpSecrets(KeyStore(backend)))
    answer_server_form(monkeypatch, add_github)
    button(qtbot, dialog, "Add server…").click()

    def add_web(form: McpServerDialog) -> None:
        form.name.setText("web")
        form.http.setChecked(True)
        form.url.setText("https://mcp.example.com/mcp")
        form.headers.setPlainText(f"Authorization: {BEARER}")

    answer_server_form(monkeypatch, add_web)
    button(qtbot, dialog, "Add server…").click()
    assert keyring_values(backend, "github") is None  # nothing stored before OK
    accept(qtbot, dialog, tools)

    data = saved.path.read_bytes()
    assert TOKEN.encode() not in data and BEARER.encode() not in data and b"sk-" not in data
    assert b"GITHUB_TOKEN" in data and b"Authorization" in data and b"keyring" in data
    assert keyring_values(backend, "github") == {"env": {"GITHUB_TOKEN": TOKEN, "MODE": "ro"}, "headers": {}}
    assert keyring_values(backend, "web") == {"env": {}, "headers": {"Authorization": BEARER}}
    # Next run: the settings file and the keyring give the host its values back.
    configs, problems = read_configs(saved.tools().settings.mcp_servers, McpSecrets(KeyStore(file_keyring(tmp_path))))
    assert problems == []
    assert [(c.name, dict(c.env), dict(c.headers)) for c in configs] == [
        ("github", {"GITHUB_TOKEN": TOKEN, "MODE": "ro"}, {}),
        ("web", {}, {"Authorization": BEARER}),
    ]


def test_cancel_leaves_the_keyring_and_the_settings_as_they_were(
    qtbot: Any, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = file_keyring(tmp_path)
    tools = Saved(settings).tools()
    dialog = open_dialog(qtbot, tools, McpSecrets(KeyStore(backend)))
    answer_server_form(monkeypatch, add_github)
    button(qtbot, dialog, "Add server…").click()
    with qtbot.waitSignal(dialog.rejected):
        dialog.reject()
    assert keyring_values(backend, "github") is None and tools.settings == ToolSettings()


def test_a_rename_moves_the_values_and_a_removal_deletes_them(
    qtbot: Any, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = file_keyring(tmp_path)
    secrets = McpSecrets(KeyStore(backend))
    saved = Saved(settings)
    tools = saved.tools()
    dialog = open_dialog(qtbot, tools, secrets)
    answer_server_form(monkeypatch, add_github)
    button(qtbot, dialog, "Add server…").click()
    accept(qtbot, dialog, tools)

    forms: list[McpServerDialog] = []
    answer_server_form(monkeypatch, lambda form: form.name.setText("gh"), forms)
    dialog = open_dialog(qtbot, tools, secrets)
    button(qtbot, dialog, "Edit…").click()
    assert f"GITHUB_TOKEN={TOKEN}" in forms[0].env.toPlainText()  # the form got the values from the keyring
    accept(qtbot, dialog, tools)
    assert keyring_values(backend, "github") is None
    assert keyring_values(backend, "gh") == {"env": {"GITHUB_TOKEN": TOKEN, "MODE": "ro"}, "headers": {}}
    assert [entry["name"] for entry in saved.tools().settings.mcp_servers] == ["gh"]

    dialog = open_dialog(qtbot, tools, secrets)
    button(qtbot, dialog, "Remove").click()
    assert keyring_values(backend, "gh") is not None  # removed on OK only
    accept(qtbot, dialog, tools)
    assert keyring_values(backend, "gh") is None and saved.tools().settings.mcp_servers == ()
    assert TOKEN.encode() not in saved.path.read_bytes()


def test_switching_a_server_off_leaves_its_values_where_they_are(
    qtbot: Any, settings: QSettings, tmp_path: Path
) -> None:
    backend = file_keyring(tmp_path)
    secrets = McpSecrets(KeyStore(backend))
    config = McpServerConfig(name="github", command=("npx", "server-github"), env={"GITHUB_TOKEN": TOKEN})
    secrets.store(config)
    saved = Saved(settings)
    tools = AppTools(ToolSettings(mcp_servers=(McpSecrets.settings_entry(config),)), save=saved.save)
    backend.delete_password(SERVICE, "mcp/github")  # lost from the keyring meanwhile
    dialog = open_dialog(qtbot, tools, secrets)
    assert any("GITHUB_TOKEN is not known" in text for text in texts(dialog.mcp_group))
    (switch,) = [box for box in dialog.mcp_group.findChildren(QCheckBox) if box.text() == "github"]
    switch.setChecked(False)
    accept(qtbot, dialog, tools)
    (entry,) = tools.settings.mcp_servers
    assert entry["enabled"] is False and entry["env"] == {"GITHUB_TOKEN": {"in": "keyring"}}
    assert keyring_values(backend, "github") is None  # not an empty value in its place: still to be entered


def test_without_a_keyring_the_forms_say_so_and_the_next_run_asks_again(
    qtbot: Any, settings: QSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = McpSecrets(KeyStore(keyring.backends.fail.Keyring()))
    saved = Saved(settings)
    tools = saved.tools()
    dialog = open_dialog(qtbot, tools, secrets)
    forms: list[McpServerDialog] = []
    answer_server_form(monkeypatch, add_github, forms)
    button(qtbot, dialog, "Add server…").click()
    note = forms[0].secrets_note
    assert not note.isHidden() and "memory until you quit" in note.text() and "no system keyring" in note.text()
    assert any("memory until you quit" in text for text in texts(dialog.mcp_group))
    accept(qtbot, dialog, tools)
    assert (dialog.notice or "").startswith("MCP server 'github': ") and "memory until you quit" in (
        dialog.notice or ""
    )
    assert TOKEN.encode() not in saved.path.read_bytes()
    # This run the server gets its values.
    (config,), _ = read_configs(tools.settings.mcp_servers, secrets)
    assert dict(config.env)["GITHUB_TOKEN"] == TOKEN

    # The next run: not started, and the dialog says which values to enter again; Edit… takes them.
    next_run = McpSecrets(KeyStore(keyring.backends.fail.Keyring()))
    tools = saved.tools()
    assert read_configs(tools.settings.mcp_servers, next_run)[0] == []
    dialog = open_dialog(qtbot, tools, next_run)
    assert any("not started: the values of GITHUB_TOKEN, MODE are not known" in t for t in texts(dialog.mcp_group))

    def retype(form: McpServerDialog) -> None:
        assert form.env.toPlainText() == "GITHUB_TOKEN=\nMODE="
        form.env.setPlainText(f"GITHUB_TOKEN={TOKEN}\nMODE=ro")

    answer_server_form(monkeypatch, retype)
    button(qtbot, dialog, "Edit…").click()
    accept(qtbot, dialog, tools)
    (config,), problems = read_configs(tools.settings.mcp_servers, next_run)
    assert problems == [] and dict(config.env)["GITHUB_TOKEN"] == TOKEN


def test_a_form_with_a_keyring_says_nothing_about_memory(qtbot: Any, tmp_path: Path) -> None:
    form = McpServerDialog(note=McpSecrets(KeyStore(file_keyring(tmp_path))).note())
    qtbot.addWidget(form)
    assert form.secrets_note.isHidden()


def test_a_mistyped_line_is_named_by_its_number_not_its_text(qtbot: Any) -> None:
    form = McpServerDialog()
    qtbot.addWidget(form)
    form.name.setText("web")
    form.http.setChecked(True)
    form.url.setText("https://mcp.example.com/mcp")
    form.headers.setPlainText(f"X-Trace: 1\nAuthorization {BEARER}")
    ok(form)
    assert form.config is None
    assert "Headers, line 2" in form.error.text() and BEARER not in form.error.text()
