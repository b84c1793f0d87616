"""The dialog that tells the user an unexpected error happened and where its log is (driven by app.desktop.crash)."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QApplication, QMessageBox

logger = logging.getLogger(__name__)

DIALOG_OBJECT_NAME = "crashDialog"


def make_crash_dialog(summary: str, log_path: str) -> QMessageBox:
    """A non-modal message box: what failed, where the log is, and a button that opens the log folder."""
    box = QMessageBox(QMessageBox.Icon.Critical, "gpt-oss desktop: unexpected error", "Something went wrong.")
    box.setObjectName(DIALOG_OBJECT_NAME)
    if log_path:
        box.setInformativeText(
            f"The details were saved to\n{log_path}\n\nPlease attach that file when you report the problem. "
            "The app may keep working, but restarting it is safest."
        )
    else:
        box.setInformativeText("The details could not be saved to a file; they were printed to the console.")
    box.setDetailedText(summary)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    if log_path:
        folder = Path(log_path).parent
        open_button = box.addButton("Open log folder", QMessageBox.ButtonRole.ActionRole)
        # ActionRole buttons close the box too; the folder opens in the file manager.
        open_button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setWindowModality(Qt.WindowModality.NonModal)
    return box


class CrashDialogNotifier(QObject):
    """Lives on the GUI thread; ``crashed`` may be emitted from any thread (a queued connection brings it here)."""

    crashed = Signal(str, str)  # summary, log path ("" when no log could be written)

    def __init__(self, parent: QApplication, max_open: int = 1) -> None:
        super().__init__(parent)
        self._max_open = max_open
        self._open: list[QMessageBox] = []
        self.crashed.connect(self._show)

    def _show(self, summary: str, log_path: str) -> None:
        if len(self._open) >= self._max_open:
            logger.info("crash dialog already open; %s logged only", log_path or "this error")
            return
        box = make_crash_dialog(summary, log_path)
        self._open.append(box)
        box.finished.connect(lambda _result: self._forget(box))
        # show(), not exec(): a nested event loop inside a qasync callback could re-enter the code that failed.
        box.show()
        box.raise_()

    def _forget(self, box: QMessageBox) -> None:
        if box in self._open:
            self._open.remove(box)
