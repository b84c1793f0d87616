"""The browser's settings: stored with the other tool choices, one switch and one policy for its three calls, a search
provider whose key goes to a real file keyring (never the settings file), and the Tools dialog and menu that edit
them, with real widgets offscreen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialogButtonBox, QMainWindow

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore, search_key_name
from gpt_oss_desktop.app.settings import TOOLS_KEY
from gpt_oss_desktop.app.shell.tools_menu import ToolsControl, open_app_tools
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
from gpt_oss_desktop.app.tools.mcp_servers import McpServers
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.app.tools.tools_dialog import ToolsDialog
from gpt_oss_desktop.engine.tools.base import ToolPolicy
from gpt_oss_desktop.engine.tools.browser.search import BraveSearch, SearchKind, SearxngSearch
from tests.app.backends.test_api_keys import file_keyring

KEY = "brave-key-0c1d2e3f4a"


def test_off_by_default_and_its_fields_round_trip_without_any_key() -> None:
    assert not ToolSettings().browser_enabled and ToolSettings().search_kind is SearchKind.DUCKDUCKGO
    settings = ToolSettings(
        browser_enabled=True,
        search_kind=SearchKind.SEARXNG,
        search_url="http://localhost:8888",
        browse_local_hosts=True,
    )
    assert ToolSettings.from_json(settings.to_json()) == settings
    for broken in ('{"search_kind": "bing", "browser_enabled": "yes"}', '{"search_url": 5}'):
        read = ToolSettings.from_json(broken)
        assert read.search_kind is SearchKind.DUCKDUCKGO and not read.browser_enabled and read.search_url == ""


def test_the_three_calls_share_one_switch_and_one_policy() -> None:
    settings = ToolSettings().with_enabled("browser", True)
    assert settings.enabled("browser.search") and settings.enabled(" browser.open")
    assert settings.policy("browser.find") is ToolPolicy.ASK
    remembered = settings.with_policy("browser.open", ToolPolicy.ALWAYS)
    assert remembered.policies == {"browser": ToolPolicy.ALWAYS}
    assert all(remembered.policy(f"browser.{name}") is ToolPolicy.ALWAYS for name in ("search", "open", "find"))
    assert not remembered.with_enabled("browser.search", False).browser_enabled


def dialog_for(qtbot: Any, settings: ToolSettings, keys: KeyStore) -> ToolsDialog:
    tools = AppTools(settings, save=lambda _s: None)
    dialog = ToolsDialog(tools, secrets=McpSecrets(keys))
    qtbot.addWidget(dialog)
    return dialog


def ok(dialog: ToolsDialog) -> None:
    dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()


def test_the_dialog_turns_browsing_on_and_its_key_goes_to_the_keyring(qtbot: Any, tmp_path: Path) -> None:
    keys = KeyStore(file_keyring(tmp_path))
    dialog = dialog_for(qtbot, ToolSettings(), keys)
    assert not dialog.enabled_boxes["browser"].isChecked()
    dialog.enabled_boxes["browser"].setChecked(True)
    dialog.search_kind.setCurrentIndex(list(SearchKind).index(SearchKind.BRAVE))
    assert dialog.search_key.isVisibleTo(dialog) and not dialog.search_url.isVisibleTo(dialog)
    ok(dialog)  # no key yet: refused, and said why
    assert dialog.result() == 0 and dialog.browser_error.isVisibleTo(dialog)
    assert "Brave Search API needs an API key" in dialog.browser_error.text()
    dialog.search_key.setText(f"  {KEY} ")
    ok(dialog)
    assert dialog.result() == 1 and dialog.notice is None
    settings = dialog.result_settings
    assert settings.browser_enabled and settings.search_kind is SearchKind.BRAVE
    assert KEY not in settings.to_json()
    assert KeyStore(file_keyring(tmp_path)).key_for(search_key_name("brave"), KeySource.KEYRING) == KEY
    # the next time, the stored key is enough; the field says one is stored without showing it
    again = dialog_for(qtbot, settings, KeyStore(file_keyring(tmp_path)))
    assert again.search_key.text() == "" and "stored in the keyring" in again.search_key.placeholderText()
    ok(again)
    assert again.result() == 1


def test_searxng_needs_an_address_and_local_hosts_are_a_choice(qtbot: Any, tmp_path: Path) -> None:
    dialog = dialog_for(qtbot, ToolSettings(browser_enabled=True), KeyStore(file_keyring(tmp_path)))
    dialog.search_kind.setCurrentIndex(list(SearchKind).index(SearchKind.SEARXNG))
    dialog.search_url.setText("localhost:8888")
    ok(dialog)
    assert dialog.result() == 0 and "needs the address of an instance" in dialog.browser_error.text()
    dialog.search_url.setText("http://localhost:8888")
    dialog.local_hosts.setChecked(True)
    ok(dialog)
    assert dialog.result() == 1
    assert dialog.result_settings.search_url == "http://localhost:8888" and dialog.result_settings.browse_local_hosts


def test_a_search_choice_without_what_it_needs_is_kept_while_browsing_is_off(qtbot: Any, tmp_path: Path) -> None:
    dialog = dialog_for(qtbot, ToolSettings(), KeyStore(file_keyring(tmp_path)))
    dialog.search_kind.setCurrentIndex(list(SearchKind).index(SearchKind.EXA))
    ok(dialog)
    assert dialog.result() == 1 and dialog.result_settings.search_kind is SearchKind.EXA


def test_the_menu_switch_and_the_app_tools_read_the_stored_settings(qtbot: Any, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings.setValue(TOOLS_KEY, ToolSettings(search_kind=SearchKind.BRAVE).to_json())
    keys = KeyStore(file_keyring(tmp_path))
    keys.remember(search_key_name("brave"), KEY, KeySource.KEYRING)
    tools = open_app_tools(settings, None, keys)
    window = QMainWindow()
    qtbot.addWidget(window)
    control = ToolsControl(window, tools, McpServers(), McpSecrets(keys))
    assert not control.browser_action.isChecked() and not tools.toolbox().browser_tool
    control.browser_action.trigger()
    assert tools.toolbox().browser_tool
    assert json.loads(str(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat).value(TOOLS_KEY)))[
        "browser_enabled"
    ]
    assert tools.search_provider() == BraveSearch(KEY)
    tools.update(ToolSettings(browser_enabled=True, search_kind=SearchKind.SEARXNG, search_url="http://127.0.0.1:9"))
    assert tools.search_provider() == SearxngSearch("http://127.0.0.1:9")
