"""Read-only text views that grow with their content, and :class:`AnswerView`, where answer rendering plugs in."""

from __future__ import annotations

import math

from PySide6.QtCore import QSizeF, Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QFrame, QSizePolicy, QTextBrowser, QWidget

_SELECTABLE = (
    Qt.TextInteractionFlag.TextSelectableByMouse
    | Qt.TextInteractionFlag.TextSelectableByKeyboard
    | Qt.TextInteractionFlag.LinksAccessibleByMouse
    | Qt.TextInteractionFlag.LinksAccessibleByKeyboard
)


class FitTextBrowser(QTextBrowser):
    """A selectable, copyable text view whose height follows its document (up to ``max_height``, then it scrolls).

    Messages sit in one scrolling chat column, so each view must be exactly as tall as its text rather than
    scroll on its own.
    """

    def __init__(self, parent: QWidget | None = None, *, max_height: int | None = None) -> None:
        super().__init__(parent)
        self._max_height = max_height
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setOpenExternalLinks(True)
        self.setTextInteractionFlags(_SELECTABLE)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOff if max_height is None else Qt.ScrollBarPolicy.ScrollBarAsNeeded
        )
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        # Blend into the message instead of painting a white "input field" box; no colour is hardcoded.
        self.setStyleSheet("QTextBrowser { background: transparent; }")
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self._fit(self.document().size())

    def append_plain(self, text: str) -> None:
        """Add text at the end without re-laying-out what is already there (cost grows with ``text`` only)."""
        bar = self.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 4
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        if follow:
            bar.setValue(bar.maximum())

    def _fit(self, size: QSizeF) -> None:
        margins = self.contentsMargins()
        height = math.ceil(size.height()) + margins.top() + margins.bottom()
        if self._max_height is not None:
            height = min(height, self._max_height)
        if height != self.height() or self.minimumHeight() != height:
            self.setFixedHeight(max(height, self.fontMetrics().height()))


class AnswerView(FitTextBrowser):
    """The final answer of one assistant message.

    :meth:`set_text` is the single seam where rendering happens: it receives the whole answer so far (plain text,
    possibly mid-stream). It shows plain text today; Markdown rendering replaces its body.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Answer")
        self._text = ""

    def set_text(self, text: str) -> None:
        if text != self._text:
            self._text = text
            self.setPlainText(text)

    def text(self) -> str:
        return self._text
