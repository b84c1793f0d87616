"""‹ 2/3 ›: which version of a question or an answer is shown, and buttons to step to the others."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget


class VersionSwitcher(QWidget):
    """Hidden until there are two versions or more.

    Signals:
        version_requested(int): the user asked for this version (0-based).
    """

    version_requested = Signal(int)

    def __init__(self, what: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._what = what  # "answer" or "message", for the accessible names
        self._current = 0
        self._count = 1
        self.previous_button = QToolButton(self)
        self.previous_button.setText("‹")
        self.previous_button.setAutoRaise(True)
        self.previous_button.clicked.connect(lambda: self.version_requested.emit(self._current - 1))
        self.label = QLabel(self)
        self.next_button = QToolButton(self)
        self.next_button.setText("›")
        self.next_button.setAutoRaise(True)
        self.next_button.clicked.connect(lambda: self.version_requested.emit(self._current + 1))
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.previous_button)
        layout.addWidget(self.label)
        layout.addWidget(self.next_button)
        self.set_versions(0, 1)

    @property
    def current(self) -> int:
        return self._current

    @property
    def count(self) -> int:
        return self._count

    def set_versions(self, current: int, count: int) -> None:
        self._current, self._count = current, count
        self.label.setText(f"{current + 1}/{count}")
        self.label.setAccessibleName(f"Version {current + 1} of {count} of this {self._what}")
        self.previous_button.setEnabled(current > 0)
        self.previous_button.setAccessibleName(f"Previous version of this {self._what}")
        self.previous_button.setToolTip(f"Previous version of this {self._what}")
        self.next_button.setEnabled(current < count - 1)
        self.next_button.setAccessibleName(f"Next version of this {self._what}")
        self.next_button.setToolTip(f"Next version of this {self._what}")
        self.setVisible(count > 1)
