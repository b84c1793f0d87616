"""Read-only text views that grow with their content, and :class:`AnswerView`, where answer rendering plugs in."""

from __future__ import annotations

import math

from PySide6.QtCore import QSizeF, Qt
from PySide6.QtGui import QResizeEvent, QTextCursor
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QTextBrowser, QWidget

from gpt_oss_desktop.app.chat.rendering.markdown_view import MarkdownView

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
        fit_height_to_document(self, max_height)

    def append_plain(self, text: str) -> None:
        """Add text at the end without re-laying-out what is already there (cost grows with ``text`` only)."""
        bar = self.verticalScrollBar()
        follow = bar.value() >= bar.maximum() - 4
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        if follow:
            bar.setValue(bar.maximum())


def fit_height_to_document(view: QTextBrowser, max_height: int | None = None) -> None:
    """Keep ``view`` exactly as tall as its document (up to ``max_height``, past which it scrolls)."""

    def fit(size: QSizeF) -> None:
        margins = view.contentsMargins()
        height = math.ceil(size.height()) + margins.top() + margins.bottom()
        if max_height is not None:
            height = min(height, max_height)
        if height != view.height() or view.minimumHeight() != height:
            view.setFixedHeight(max(height, view.fontMetrics().height()))

    view.document().documentLayout().documentSizeChanged.connect(fit)
    fit(view.document().size())


class AnswerView(MarkdownView):
    """The final answer of one assistant message, rendered as Markdown (highlighted code, copy buttons).

    :meth:`set_text` receives the whole answer so far: when it extends what is shown (streaming) only the new text
    is appended, and :class:`MarkdownView` re-renders on its throttle; anything else replaces the content.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Answer")
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setStyleSheet("QTextBrowser { background: transparent; }")
        fit_height_to_document(self)

    def set_text(self, text: str) -> None:
        shown = self.text()
        if shown and text.startswith(shown):
            self.append_text(text[len(shown) :])
        elif text != shown:
            super().set_text(text)


class ElidedLabel(QLabel):
    """One line of text, shortened with "…" to the room it has; the whole text is then its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        # Any width, down to none: the text gives way to its neighbours (a status bar's permanent widgets, a card's
        # buttons), never the window's minimum. Give it a stretch factor: its size hint is ignored.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(0)

    @property
    def full_text(self) -> str:
        return self._full

    def set_full_text(self, text: str) -> None:
        self._full = text
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        room = max(self.contentsRect().width(), 0)
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, room)
        if shown != self.text():
            self.setText(shown)
        self.setToolTip(self._full if shown != self._full else "")
