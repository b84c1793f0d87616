"""Tools: let the model run Python (a quick switch) and Tool settings… (app/tools/tools_dialog.py), plus the app's
tools themselves, built from the settings at startup: :func:`open_app_tools` then :func:`attach`.

MCP servers start in the background once the window's loop runs, and again after the settings change; a server
that fails (now or later) is named in the status bar, and its tools answer the model with what went wrong.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMainWindow

from gpt_oss_desktop.app.settings import TOOLS_KEY
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.mcp_servers import McpServers, read_configs
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.app.tools.tools_dialog import ToolsDialog
from gpt_oss_desktop.engine.tools.python_sandbox import PythonSandbox
from gpt_oss_desktop.engine.tools.python_tool import PythonTool

logger = logging.getLogger(__name__)

_NOTICE_MS: Final = 15000


def open_app_tools(settings: QSettings, servers: McpServers | None = None) -> AppTools:
    """The app's tools as the settings describe them (the python tool, the built-in functions, MCP servers' tools)."""

    def save(changed: ToolSettings) -> None:
        settings.setValue(TOOLS_KEY, changed.to_json())

    stored = settings.value(TOOLS_KEY)
    return AppTools(
        ToolSettings.from_json(stored if isinstance(stored, str) else None),
        save=save,
        python_tool=PythonTool(PythonSandbox()),
        extra_tools=servers.tools if servers is not None else None,
    )


class ToolsControl(QObject):
    """The Tools menu, kept in step with the settings.

    Signals:
        notice(str): something about the tools the user should know (an MCP server failed).
    """

    notice = Signal(str)

    def __init__(self, window: QMainWindow, tools: AppTools, servers: McpServers) -> None:
        super().__init__(window)
        self._window = window
        self.tools = tools
        self.servers = servers
        self._tasks: set[asyncio.Task[object]] = set()
        self.menu = window.menuBar().addMenu("&Tools")
        self.python_action = QAction("Let the model run &Python", window)
        self.python_action.setCheckable(True)
        self.python_action.setChecked(tools.settings.python_enabled and tools.python_tool is not None)
        self.python_action.setEnabled(tools.python_tool is not None)
        self.python_action.toggled.connect(self._set_python)
        self.settings_action = QAction("Tool &settings…", window)
        self.settings_action.triggered.connect(self.open_settings)
        self.menu.addAction(self.python_action)
        self.menu.addAction(self.settings_action)
        self.notice.connect(lambda text: window.statusBar().showMessage(text, _NOTICE_MS))

    def start_servers(self) -> None:
        """(Re)start the MCP servers the settings enable, in the background (on the running loop)."""
        configs, problems = read_configs(self.tools.settings.mcp_servers)
        for problem in problems:
            self.notice.emit(problem)
        task: asyncio.Task[object] = asyncio.ensure_future(self.servers.apply(configs))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def open_settings(self) -> None:
        dialog = ToolsDialog(self.tools, self.servers, self._window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        self.tools.update(dialog.result_settings)
        self.python_action.setChecked(dialog.result_settings.python_enabled)
        self.start_servers()

    def _set_python(self, enabled: bool) -> None:
        if enabled != self.tools.settings.python_enabled:
            self.tools.update(self.tools.settings.with_enabled("python", enabled))


def attach(window: QMainWindow, tools: AppTools, servers: McpServers) -> ToolsControl:
    """Add the Tools menu to ``window`` and route MCP failures to its status bar; the caller starts the servers
    (:meth:`ToolsControl.start_servers`) once its loop runs."""
    control = ToolsControl(window, tools, servers)
    servers.set_notice(control.notice.emit)
    return control
