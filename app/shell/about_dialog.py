"""Help ▸ About gpt-oss desktop: the version, what it runs on (app/shell/about_details.py) and a Copy details button
that puts the same text on the clipboard for a bug report."""

from __future__ import annotations

import logging

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.shell import icons
from gpt_oss_desktop.app.shell.about_details import AboutDetails, gather
from gpt_oss_desktop.kernels.cpu_kernel_status import KernelStatus  # torch-free

logger = logging.getLogger(__name__)

TITLE = "About gpt-oss desktop"
COPIED_TEXT = "Copied to the clipboard"


def current_details(kernels: KernelStatus | None, *, kernels_building: bool = False) -> AboutDetails:
    """This install's details, with the Qt and PySide6 versions in use."""
    return gather(qt=qVersion(), pyside=PySide6.__version__, kernels=kernels, kernels_building=kernels_building)


class AboutDialog(QDialog):
    """The About box. ``details`` is read once, when it opens."""

    def __init__(self, details: AboutDetails, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.details = details
        self.setWindowTitle(TITLE)
        heading = QLabel(f"<b>gpt-oss desktop</b> {details.app_version}", self)
        heading.setTextFormat(Qt.TextFormat.RichText)
        blurb = QLabel("Chat with OpenAI's gpt-oss models on your own computer, with live reasoning.", self)
        blurb.setWordWrap(True)
        form = QFormLayout()
        self.values: dict[str, QLabel] = {}
        for label, value in details.rows()[1:]:  # the first row is the heading's
            shown = QLabel(value, self)
            shown.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            shown.setTextFormat(Qt.TextFormat.PlainText)
            shown.setWordWrap(True)
            form.addRow(f"{label}:", shown)
            self.values[label] = shown
        self.copied = QLabel("", self)
        self.copied.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.copy_button = QPushButton("&Copy details", self)
        self.copy_button.setToolTip("Copy these versions, for a bug report (no chats, paths or settings)")
        self.copy_button.setAutoDefault(False)
        icons.set_icon(self.copy_button, "copy")
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(heading)
        layout.addWidget(blurb)
        layout.addLayout(form)
        layout.addWidget(self.copied)
        layout.addWidget(buttons)
        self.setMinimumWidth(460)  # the OS line is long; wrapped into a narrow box it reads badly

    def copy_details(self) -> None:
        """Put the details on the clipboard as plain text."""
        clipboard = QGuiApplication.clipboard()
        clipboard.setText(self.details.text())
        self.copied.setText(COPIED_TEXT)
        logger.info("About details copied to the clipboard")
