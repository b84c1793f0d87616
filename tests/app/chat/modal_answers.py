"""Answering the real modal dialogs (QInputDialog, QMessageBox) a widget opens, in GUI tests.

A modal dialog runs its own event loop inside the click that opened it, so the answer comes from a timer that
watches for the dialog to be shown; the test then checks that it was answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialog, QInputDialog, QMessageBox

D = TypeVar("D", bound=QDialog)


def answer_next(kind: type[D], answer: Callable[[D], None], timeout: float = 10.0) -> list[str]:
    """Answer the next modal dialog of ``kind`` with ``answer`` once it is shown; the returned list gets the
    dialog's title when that happened (an empty list: no such dialog came within ``timeout`` seconds)."""
    answered: list[str] = []
    deadline = time.monotonic() + timeout

    def poll() -> None:
        widget = QApplication.activeModalWidget()
        if isinstance(widget, kind) and widget.isVisible():
            answered.append(widget.windowTitle())
            try:
                answer(widget)
            finally:
                if widget.isVisible():  # an answer that failed must not leave the test blocked in the dialog
                    widget.reject()
        elif time.monotonic() < deadline:  # past it, stop watching: a later dialog must not get this answer
            QTimer.singleShot(10, poll)

    QTimer.singleShot(0, poll)
    return answered


def type_name(name: str) -> Callable[[QInputDialog], None]:
    def answer(dialog: QInputDialog) -> None:
        dialog.setTextValue(name)
        dialog.accept()

    return answer


def press(button: QMessageBox.StandardButton) -> Callable[[QMessageBox], None]:
    def answer(box: QMessageBox) -> None:
        found = box.button(button)
        assert found is not None, f"the message box has no {button} button"
        found.click()

    return answer
