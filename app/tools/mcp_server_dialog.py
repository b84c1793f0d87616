"""Add or edit one MCP server: a command to run (stdio) or a URL (streamable HTTP), extra environment or headers.

The environment's and headers' values are secrets (tokens): the form hands them to the Tools dialog, which puts them
in the keyring on OK (app/tools/mcp_secrets.py); when they can only be kept for this run, the form says why.
"""

from __future__ import annotations

import shlex

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.engine.tools.mcp_config import McpConfigError, McpServerConfig


def _pairs(text: str, separator: str, what: str) -> dict[str, str]:
    """``KEY=value`` (or ``Name: value``) lines to a dict; blank lines are skipped."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, found, value = line.partition(separator)
        if not found:
            # The line number, never the line: a mistyped line is likely a token.
            raise McpConfigError(f"{what}, line {number}: write each line as NAME{separator}value")
        out[key.strip()] = value.strip()
    return out


class McpServerDialog(QDialog):
    """The form; :attr:`config` holds the server once accepted. A config the engine rejects keeps the dialog open
    with the reason under the form.

    Args:
        note: why the values will be kept for this run only (:meth:`~app.tools.mcp_secrets.McpSecrets.note`), shown
            under the form; None when they go to the keyring.
    """

    def __init__(
        self, parent: QWidget | None = None, config: McpServerConfig | None = None, *, note: str | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Edit MCP server" if config else "Add MCP server")
        self.config: McpServerConfig | None = None
        self._original = config
        self.name = QLineEdit(config.name if config else "", self)
        self.name.setPlaceholderText("files")
        self.stdio = QRadioButton("Run a command (stdio)", self)
        self.http = QRadioButton("Connect to a URL (streamable HTTP)", self)
        group = QButtonGroup(self)
        group.addButton(self.stdio)
        group.addButton(self.http)
        (self.http if config is not None and config.transport == "http" else self.stdio).setChecked(True)
        self.command = QLineEdit(shlex.join(config.command) if config else "", self)
        self.command.setPlaceholderText("npx -y @modelcontextprotocol/server-filesystem ~/Documents")
        self.env = QPlainTextEdit("\n".join(f"{k}={v}" for k, v in (config.env.items() if config else ())), self)
        self.env.setPlaceholderText("NAME=value, one per line")
        self.env.setFixedHeight(64)
        self.url = QLineEdit(config.url if config else "", self)
        self.url.setPlaceholderText("http://127.0.0.1:8000/mcp")
        self.headers = QPlainTextEdit(
            "\n".join(f"{k}: {v}" for k, v in (config.headers.items() if config else ())), self
        )
        self.headers.setPlaceholderText("Name: value, one per line (e.g. Authorization: Bearer …)")
        self.headers.setFixedHeight(64)
        self.secrets_note = QLabel(note or "", self)
        self.secrets_note.setProperty("role", "caption")
        self.secrets_note.setWordWrap(True)
        self.secrets_note.setVisible(bool(note))
        self.enabled = QCheckBox("Start this server", self)
        self.enabled.setChecked(config.enabled if config else True)
        self.error = QLabel(self)
        self.error.setProperty("role", "error")
        self.error.setWordWrap(True)
        self.error.hide()

        form = QFormLayout()
        form.addRow("Name", self.name)
        transport = QHBoxLayout()
        transport.addWidget(self.stdio)
        transport.addWidget(self.http)
        form.addRow("Kind", transport)
        form.addRow("Command", self.command)
        form.addRow("Environment", self.env)
        form.addRow("URL", self.url)
        form.addRow("Headers", self.headers)
        self._form = form
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.secrets_note)
        layout.addWidget(self.enabled)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.stdio.toggled.connect(self._show_fields)
        self._show_fields()

    def _show_fields(self) -> None:
        stdio = self.stdio.isChecked()
        for widget, shown in (
            (self.command, stdio),
            (self.env, stdio),
            (self.url, not stdio),
            (self.headers, not stdio),
        ):
            self._form.setRowVisible(widget, shown)

    def _accept(self) -> None:
        try:
            self.config = self._build()
        except (McpConfigError, ValueError) as exc:  # ValueError: shlex's unclosed quote
            self.error.setText(str(exc))
            self.error.show()
            return
        self.accept()

    def _build(self) -> McpServerConfig:
        stdio = self.stdio.isChecked()
        original = self._original
        return McpServerConfig(
            name=self.name.text().strip(),
            transport="stdio" if stdio else "http",
            command=tuple(shlex.split(self.command.text())) if stdio else (),
            env=_pairs(self.env.toPlainText(), "=", "Environment") if stdio else {},
            url="" if stdio else self.url.text().strip(),
            headers={} if stdio else _pairs(self.headers.toPlainText(), ":", "Headers"),
            enabled=self.enabled.isChecked(),
            **(
                {"call_timeout_s": original.call_timeout_s, "start_timeout_s": original.start_timeout_s}
                if original is not None
                else {}
            ),
        )
