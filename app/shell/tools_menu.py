"""Tools: let the model run Python and let it browse the web (quick switches) and Tool settings…
(app/tools/tools_dialog.py), plus the app's
tools themselves, built from the settings at startup: :func:`open_app_tools` then :func:`attach`.

MCP servers start in the background once the window's loop runs, and again after the settings change; a server
that fails (now or later) is named in the status bar, and its tools answer the model with what went wrong. Their
header and environment values live in the keyring (app/tools/mcp_secrets.py): :func:`attach` first moves any that an
older settings file holds in plain text.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Final

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMainWindow

from gpt_oss_desktop.app.backends.api_keys import KeySource, KeyStore, search_key_name
from gpt_oss_desktop.app.settings import TOOLS_KEY
from gpt_oss_desktop.app.shell import help_menu
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets
from gpt_oss_desktop.app.tools.mcp_servers import McpServers, read_configs
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.app.tools.tools_dialog import ToolsDialog
from gpt_oss_desktop.engine.tools.browser.names import BROWSER_NAMESPACE
from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox
from gpt_oss_desktop.engine.tools.python_tool import PythonTool

logger = logging.getLogger(__name__)

_NOTICE_MS: Final = 15000


def open_app_tools(settings: QSettings, servers: McpServers | None = None, keys: KeyStore | None = None) -> AppTools:
    """The app's tools as the settings describe them (the python tool, the browser, the built-in functions, MCP
    servers' tools); ``keys`` holds the browser's search API key."""

    def save(changed: ToolSettings) -> None:
        settings.setValue(TOOLS_KEY, changed.to_json())
        settings.sync()  # at once: a value moved to the keyring must not wait in the file for Qt's next write

    stored = settings.value(TOOLS_KEY)
    return AppTools(
        ToolSettings.from_json(stored if isinstance(stored, str) else None),
        save=save,
        python_tool=PythonTool(PythonSandbox()),
        extra_tools=servers.tools if servers is not None else None,
        search_key=(lambda kind: keys.key_for(search_key_name(kind.value), KeySource.KEYRING)) if keys else None,
    )


class ToolsControl(QObject):
    """The Tools menu, kept in step with the settings.

    Signals:
        notice(str): something about the tools the user should know (an MCP server failed).
    """

    notice = Signal(str)

    def __init__(self, window: QMainWindow, tools: AppTools, servers: McpServers, secrets: McpSecrets) -> None:
        super().__init__(window)
        self._window = window
        self.tools = tools
        self.servers = servers
        self.secrets = secrets
        self._tasks: set[asyncio.Task[object]] = set()
        self.menu = help_menu.add_menu(window, "&Tools")  # before Help, which stays last
        self.python_action = QAction("Let the model run &Python", window)
        self.python_action.setCheckable(True)
        self.python_action.setChecked(tools.settings.python_enabled and tools.python_tool is not None)
        self.python_action.setEnabled(tools.python_tool is not None)
        self.python_action.toggled.connect(self._set_python)
        self.browser_action = QAction("Let the model browse the &web", window)
        self.browser_action.setCheckable(True)
        self.browser_action.setChecked(tools.settings.browser_enabled)
        self.browser_action.setStatusTip("Search and read web pages while it reasons (search: Tool settings…)")
        self.browser_action.toggled.connect(self._set_browser)
        self.settings_action = QAction("Tool &settings…", window)
        self.settings_action.triggered.connect(self.open_settings)
        self.menu.addAction(self.python_action)
        self.menu.addAction(self.browser_action)
        self.menu.addAction(self.settings_action)
        self.notice.connect(lambda text: window.statusBar().showMessage(text, _NOTICE_MS))

    def start_servers(self) -> None:
        """(Re)start the MCP servers the settings enable, in the background (on the running loop)."""
        configs, problems = read_configs(self.tools.settings.mcp_servers, self.secrets)
        for problem in problems:
            self.notice.emit(problem)
        task: asyncio.Task[object] = asyncio.ensure_future(self.servers.apply(configs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def open_settings(self) -> None:
        dialog = ToolsDialog(self.tools, self.servers, self._window, secrets=self.secrets)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.tools.update(dialog.result_settings)
        self.python_action.setChecked(dialog.result_settings.python_enabled)
        self.browser_action.setChecked(dialog.result_settings.browser_enabled)
        if dialog.notice is not None:
            self.notice.emit(dialog.notice)
        self.start_servers()

    def move_secrets_to_keyring(self) -> None:
        """Take the header and environment values an older settings file holds in plain text out of it, into the
        keyring (or this run's memory, said in a notice, when there is no keyring)."""
        migration = self.secrets.migrate(self.tools.settings.mcp_servers)
        if migration.changed:
            self.tools.update(replace(self.tools.settings, mcp_servers=migration.entries))
        if migration.notice is not None:
            self.notice.emit(migration.notice)

    def _set_python(self, enabled: bool) -> None:
        if enabled != self.tools.settings.python_enabled:
            self.tools.update(self.tools.settings.with_enabled("python", enabled))

    def _set_browser(self, enabled: bool) -> None:
        if enabled != self.tools.settings.browser_enabled:
            self.tools.update(self.tools.settings.with_enabled(BROWSER_NAMESPACE, enabled))


def attach(window: QMainWindow, tools: AppTools, servers: McpServers, secrets: McpSecrets) -> ToolsControl:
    """Add the Tools menu to ``window``, route MCP failures to its status bar and move MCP values an older settings
    file holds to the keyring; the caller starts the servers (:meth:`ToolsControl.start_servers`) once its loop
    runs."""
    control = ToolsControl(window, tools, servers, secrets)
    servers.set_notice(control.notice.emit)
    control.move_secrets_to_keyring()
    return control
