"""Tools ▸ Tool settings…: which tools the model may call in your chats, whether each asks first, the python
tool's sandbox in plain words, the browser and its web search (a provider's API key goes to the keyring on OK), and
the MCP servers (their header and environment values go to the keyring on OK, app/tools/mcp_secrets.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.backends.api_keys import KeySource, search_key_name
from gpt_oss_desktop.app.tools.app_tools import AppTools
from gpt_oss_desktop.app.tools.mcp_secrets import McpSecrets, ResolvedServer
from gpt_oss_desktop.app.tools.mcp_server_dialog import McpServerDialog
from gpt_oss_desktop.app.tools.mcp_servers import McpServers
from gpt_oss_desktop.app.tools.tool_settings import ToolSettings
from gpt_oss_desktop.engine.harmony import PYTHON_TOOL
from gpt_oss_desktop.engine.tools.base import ToolPolicy
from gpt_oss_desktop.engine.tools.browser.names import BROWSER_NAMESPACE
from gpt_oss_desktop.engine.tools.browser.search import SearchKind, make_provider
from gpt_oss_desktop.engine.tools.builtin_functions import BUILTIN_FUNCTIONS
from gpt_oss_desktop.engine.tools.mcp_config import McpConfigError, McpServerConfig
from gpt_oss_desktop.engine.tools.python_sandbox import SandboxKind, sandbox_info

POLICY_LABELS: Final = {ToolPolicy.ASK: "Ask first", ToolPolicy.ALWAYS: "Always run", ToolPolicy.NEVER: "Never run"}
_BROWSER_ABOUT: Final = (
    "Let the model search the web and read pages while it reasons (gpt-oss's own browser tool). Pages are fetched "
    "from this computer: the sites, and the search provider, see what is asked and your address."
)
_SEARCH_HELP: Final = {
    SearchKind.NONE: "Without search the model can still open addresses you give it or it knows.",
    SearchKind.DUCKDUCKGO: "DuckDuckGo's results page, no key needed; it may hold back a burst of automated searches.",
    SearchKind.SEARXNG: "A SearXNG instance with its JSON format on (search.formats: [html, json]), e.g. "
    "http://localhost:8888.",
    SearchKind.BRAVE: "An API key from api-dashboard.search.brave.com (kept in the system keyring).",
    SearchKind.EXA: "An API key from dashboard.exa.ai (kept in the system keyring).",
}
_INTRO: Final = (
    "Tools the model may call in your chats. “Ask first” shows each call and waits for you; the local server "
    "never runs tools (its clients run their own)."
)


def _caption(text: str, parent: QWidget | None) -> QLabel:
    label = QLabel(text, parent)
    label.setProperty("role", "caption")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


class ToolsDialog(QDialog):
    """Edits a copy of the tool settings; :attr:`result_settings` holds them once accepted, and :attr:`notice` what
    the window should say then (values the keyring did not take).

    Args:
        secrets: where the MCP servers' header and environment values are read from, and go on OK.
    """

    def __init__(
        self,
        tools: AppTools,
        servers: McpServers | None = None,
        parent: QWidget | None = None,
        *,
        secrets: McpSecrets,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tool settings")
        self.setMinimumWidth(560)
        self.result_settings: ToolSettings = tools.settings
        self.notice: str | None = None
        self._settings = tools.settings
        self._tools = tools
        self._servers = servers
        self._secrets = secrets
        # Servers added or edited here, values included, by name: the settings copy holds them names-only, and their
        # values reach the keyring on OK only, so Cancel leaves the keyring as it was.
        self._pending: dict[str, McpServerConfig] = {}
        self._removed: set[str] = set()  # removed or renamed away here: their keyring entries go on OK
        self.policy_boxes: dict[str, QComboBox] = {}
        self.enabled_boxes: dict[str, QCheckBox] = {}

        body = QWidget(self)
        column = QVBoxLayout(body)
        column.addWidget(_caption(_INTRO, body))
        column.addWidget(self._python_group(body))
        column.addWidget(self._browser_group(body))
        column.addWidget(self._functions_group(body))
        self.mcp_group = QGroupBox("MCP servers", body)
        self._mcp_layout = QVBoxLayout(self.mcp_group)
        column.addWidget(self.mcp_group)
        column.addStretch(1)
        self._fill_mcp()
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the rows wrap instead
        scroll.setWidget(body)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(buttons)
        self.resize(620, 640)

    # -- sections ---------------------------------------------------------------------------------------------

    def _python_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Python", parent)
        grid = QGridLayout(group)
        self._tool_row(grid, 0, PYTHON_TOOL, "python", "Let the model run Python code, for exact arithmetic and data.")
        info = sandbox_info()
        self.sandbox_summary = _caption(info.summary, group)
        self.sandbox_summary.setAccessibleName("Python sandbox")
        if info.kind is SandboxKind.FALLBACK:
            self.sandbox_summary.setProperty("role", "error")  # the weaker fallback: the user should know
        grid.addWidget(self.sandbox_summary, 2, 0, 1, 2)
        if self._tools.python_tool is None:
            self.enabled_boxes[PYTHON_TOOL].setEnabled(False)
            grid.addWidget(_caption("The python tool is not available in this build.", group), 3, 0, 1, 2)
        return group

    def _browser_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Web browsing", parent)
        grid = QGridLayout(group)
        self._tool_row(grid, 0, BROWSER_NAMESPACE, "browser", _BROWSER_ABOUT)
        self.search_kind = QComboBox(group)
        for kind in SearchKind:
            self.search_kind.addItem(kind.label, kind)
        self.search_kind.setCurrentIndex(list(SearchKind).index(self._settings.search_kind))
        self.search_kind.setAccessibleName("Web search provider")
        self.search_url = QLineEdit(self._settings.search_url, group)
        self.search_url.setPlaceholderText("http://localhost:8888")
        self.search_url.setAccessibleName("SearXNG address")
        self.search_key = QLineEdit(group)
        self.search_key.setEchoMode(QLineEdit.EchoMode.Password)
        self.search_key.setAccessibleName("Search API key")
        self.search_help = _caption("", group)
        self.local_hosts = QCheckBox("Allow pages on this computer and the local network", group)
        self.local_hosts.setChecked(self._settings.browse_local_hosts)
        self.local_hosts.setToolTip(
            "Off by default: a page the model reads could otherwise lead it to your router or to services on this "
            "computer."
        )
        self.browser_error = _caption("", group)
        self.browser_error.setProperty("role", "error")
        self.browser_error.hide()
        self._url_label = QLabel("Address", group)
        self._key_label = QLabel("API key", group)
        form = QGridLayout()
        form.addWidget(QLabel("Search with", group), 0, 0)
        form.addWidget(self.search_kind, 0, 1)
        form.addWidget(self._url_label, 1, 0)
        form.addWidget(self.search_url, 1, 1)
        form.addWidget(self._key_label, 2, 0)
        form.addWidget(self.search_key, 2, 1)
        form.setColumnStretch(1, 1)
        grid.addLayout(form, 2, 0, 1, 2)
        grid.addWidget(self.search_help, 3, 0, 1, 2)
        grid.addWidget(self.local_hosts, 4, 0, 1, 2)
        grid.addWidget(self.browser_error, 5, 0, 1, 2)
        self.search_kind.currentIndexChanged.connect(self._show_search_fields)
        self._show_search_fields()
        return group

    def _chosen_search(self) -> SearchKind:
        # Qt hands a StrEnum back as its plain string.
        return SearchKind(str(self.search_kind.currentData() or SearchKind.NONE.value))

    def _stored_search_key(self, kind: SearchKind) -> str | None:
        return self._secrets.keys.key_for(search_key_name(kind.value), KeySource.KEYRING) if kind.needs_key else None

    def _show_search_fields(self) -> None:
        kind = self._chosen_search()
        # Only the field the chosen provider needs is shown.
        for widget in (self._url_label, self.search_url):
            widget.setVisible(kind.needs_url)
        for widget in (self._key_label, self.search_key):
            widget.setVisible(kind.needs_key)
        self.search_key.clear()
        stored = self._stored_search_key(kind)
        self.search_key.setPlaceholderText("stored in the keyring (type to replace)" if stored else "")
        self.search_help.setText(_SEARCH_HELP[kind])
        self.browser_error.hide()

    def _browser_settings(self) -> ToolSettings | None:
        """The browser's fields into the settings, or None (and the error shown) when search lacks what it needs."""
        kind = self._chosen_search()
        key = self.search_key.text().strip() or self._stored_search_key(kind) or ""
        try:
            make_provider(kind, base_url=self.search_url.text(), api_key=key)
        except ValueError as exc:
            if self._settings.browser_enabled:
                self.browser_error.setText(f"Web search: {exc}.")
                self.browser_error.show()
                return None
        return replace(
            self._settings,
            search_kind=kind,
            search_url=self.search_url.text().strip(),
            browse_local_hosts=self.local_hosts.isChecked(),
        )

    def _functions_group(self, parent: QWidget) -> QGroupBox:
        group = QGroupBox("Built-in functions", parent)
        grid = QGridLayout(group)
        for row, tool in enumerate(BUILTIN_FUNCTIONS):
            self._tool_row(grid, 2 * row, tool.recipient, tool.function.name, tool.function.description)
        return group

    def _fill_mcp(self) -> None:
        while (item := self._mcp_layout.takeAt(0)) is not None:
            if (widget := item.widget()) is not None:
                widget.deleteLater()
        servers, problems = self._read_servers()
        if not servers:
            self._mcp_layout.addWidget(
                _caption("No MCP servers yet. Add one to offer its tools to the model.", self.mcp_group)
            )
        for problem in problems:
            label = _caption(problem, self.mcp_group)
            label.setProperty("role", "error")
            self._mcp_layout.addWidget(label)
        note = self._secrets.note()
        if note is not None and any(server.config.env or server.config.headers for server in servers):
            self._mcp_layout.addWidget(_caption(note, self.mcp_group))  # as the Connect dialog says it of a key
        for server in servers:
            self._mcp_layout.addWidget(self._server_row(server))
        add = QPushButton("Add server…", self.mcp_group)
        add.clicked.connect(lambda: self._edit_server(None))
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(add)
        holder = QWidget(self.mcp_group)
        holder.setLayout(row)
        self._mcp_layout.addWidget(holder)

    def _read_servers(self) -> tuple[list[ResolvedServer], list[str]]:
        """The servers of the settings copy, values filled in (from this dialog's edits, else the keyring), and a
        sentence for each entry that cannot be read."""
        servers: list[ResolvedServer] = []
        problems: list[str] = []
        for entry in self._settings.mcp_servers:
            name = entry.get("name")
            if isinstance(name, str) and name in self._pending:
                servers.append(ResolvedServer(self._pending[name]))
                continue
            try:
                servers.append(self._secrets.resolve(entry))
            except McpConfigError as exc:
                problems.append(str(exc))
        return servers, problems

    def _server_row(self, server: ResolvedServer) -> QWidget:
        config = server.config
        box = QWidget(self.mcp_group)
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setColumnStretch(1, 1)
        enabled = QCheckBox(config.name, box)
        enabled.setChecked(config.enabled)
        enabled.setAccessibleName(f"Start MCP server {config.name}")
        enabled.toggled.connect(lambda on, name=config.name: self._set_enabled(name, on))
        edit = QPushButton("Edit…", box)
        edit.clicked.connect(lambda _=False, c=config: self._edit_server(c))
        remove = QPushButton("Remove", box)
        remove.clicked.connect(lambda _=False, c=config: self._replace_server(c, None))
        grid.addWidget(enabled, 0, 0)
        grid.addWidget(edit, 0, 2)
        grid.addWidget(remove, 0, 3)
        where = " ".join(config.command) if config.transport == "stdio" else config.url
        state = "not started" if server.missing else self._server_state(config)
        grid.addWidget(_caption(f"{where} · {state}", box), 1, 0, 1, 4)
        if server.missing:  # kept for one run only, or gone from the keyring: Edit… takes them again
            missing = _caption(self._secrets.missing_sentence(config.name, server.missing), box)
            missing.setProperty("role", "error")
            grid.addWidget(missing, 2, 0, 1, 4)
        tools = [tool for tool in self._tools.available() if getattr(tool, "server", None) == config.name]
        tool_grid = QGridLayout()
        tool_grid.setContentsMargins(24, 0, 0, 0)
        for row, tool in enumerate(tools):
            description = tool.spec.description if tool.spec is not None else ""
            self._tool_row(tool_grid, 2 * row, tool.recipient, tool.recipient.removeprefix("functions."), description)
        grid.addLayout(tool_grid, 3, 0, 1, 4)
        return box

    def _server_state(self, config: McpServerConfig) -> str:
        if not config.enabled:
            return "off"
        status = self._servers.status(config.name) if self._servers is not None else None
        if status is None:
            return "starts when you press OK"
        if status.running:
            return f"running · {len(status.tools)} tool{'' if len(status.tools) == 1 else 's'}"
        return f"{status.state.value}{': ' + status.message if status.message else ''}"

    def _tool_row(self, grid: QGridLayout, row: int, recipient: str, name: str, description: str) -> None:
        """Rows ``row`` and ``row + 1``: the switch and the policy, then the description (wrapped, so a long one
        never widens the dialog)."""
        enabled = QCheckBox(name, grid.parentWidget())
        enabled.setChecked(self._settings.enabled(recipient))
        enabled.toggled.connect(lambda on: self._update(lambda s: s.with_enabled(recipient, on)))
        policy = QComboBox(grid.parentWidget())
        for value, label in POLICY_LABELS.items():
            policy.addItem(label, value)
        policy.setCurrentIndex(list(POLICY_LABELS).index(self._settings.policy(recipient)))
        policy.setAccessibleName(f"When the model calls {recipient}")
        policy.currentIndexChanged.connect(
            lambda index: self._update(lambda s: s.with_policy(recipient, list(POLICY_LABELS)[index]))
        )
        self.enabled_boxes[recipient] = enabled
        self.policy_boxes[recipient] = policy
        grid.addWidget(enabled, row, 0)
        grid.addWidget(policy, row, 1, Qt.AlignmentFlag.AlignTop)
        if description:
            grid.addWidget(_caption(description, grid.parentWidget()), row + 1, 0, 1, 2)
        grid.setColumnStretch(0, 1)

    # -- changes ----------------------------------------------------------------------------------------------

    def _update(self, change: Callable[[ToolSettings], ToolSettings]) -> None:
        self._settings = change(self._settings)

    def _edit_server(self, config: McpServerConfig | None) -> None:
        dialog = McpServerDialog(self, config, note=self._secrets.note())
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.config is None:
            return
        self._replace_server(config, dialog.config)

    def _replace_server(self, old: McpServerConfig | None, new: McpServerConfig | None) -> None:
        """Remove ``old`` (None: nothing), add ``new`` (None: nothing) at the end; a rename is both."""
        servers = [dict(entry) for entry in self._settings.mcp_servers if old is None or entry.get("name") != old.name]
        if old is not None:
            self._pending.pop(old.name, None)
            self._removed.add(old.name)
        if new is not None:
            servers = [entry for entry in servers if entry.get("name") != new.name]
            servers.append(self._secrets.settings_entry(new))
            self._pending[new.name] = new
        self._update(lambda s: replace(s, mcp_servers=tuple(servers)))
        self._fill_mcp()

    def _set_enabled(self, name: str, enabled: bool) -> None:
        # Only the switch changes: the values stay where they are (a server whose values are missing stays so).
        if name in self._pending:
            self._pending[name] = replace(self._pending[name], enabled=enabled)
        servers = tuple(
            {**entry, "enabled": enabled} if entry.get("name") == name else entry
            for entry in self._settings.mcp_servers
        )
        self._update(lambda s: replace(s, mcp_servers=servers))
        self._fill_mcp()

    def _accept(self) -> None:
        settings = self._browser_settings()
        if settings is None:
            return
        self._settings = settings
        typed_key = self.search_key.text().strip()
        if typed_key and settings.search_kind.needs_key:
            name = search_key_name(settings.search_kind.value)
            if not self._secrets.keys.remember(name, typed_key, KeySource.KEYRING):
                self.notice = (
                    f"The search API key is kept in memory until you quit: {self._secrets.keys.keyring_problem}."
                )
        # Forgotten first: a server removed and then added again under its name keeps the new values.
        for name in sorted(self._removed - self._pending.keys()):
            self._secrets.forget(name)
        kept = [config.name for config in self._pending.values() if not self._secrets.store(config)]
        if kept:
            self.notice = self._secrets.memory_notice(kept)
        self.result_settings = self._settings
        self.accept()
