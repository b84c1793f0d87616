"""The window's status bar: its temporary message (``showMessage``) elides with a tooltip instead of being cut off
by the permanent widgets at the right (model, device, memory, context), as it was at 800 px."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter, QPaintEvent, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizeGrip, QSizePolicy, QStatusBar, QStyle, QStyleOption, QWidget


class _MessageLabel(QLabel):
    """One line of text, shortened with "…" to the room it has; the whole text is then its tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        # Any width, down to none: the message gives way to the permanent widgets, never the window's minimum.
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


class StatusBar(QStatusBar):
    """A QStatusBar whose temporary message is shown by an eliding label at its left.

    ``showMessage``, ``clearMessage``, ``currentMessage`` and timeouts work as in QStatusBar (the message is still
    QStatusBar's own); only the drawing differs: QStatusBar paints it clipped at the first permanent widget, mid-word.
    The label is the first permanent widget, stretched; :meth:`insertPermanentWidget` counts indexes after it, so
    widgets inserted "at the left" (index 0) go right of the message.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = _MessageLabel(self)
        self.message.setAccessibleName("Status message")
        self.message.setContentsMargins(6, 0, 6, 0)
        super().insertPermanentWidget(0, self.message, 1)
        self.messageChanged.connect(self.message.set_full_text)

    def insertPermanentWidget(self, index: int, widget: QWidget, stretch: int = 0) -> int:
        return super().insertPermanentWidget(index + 1 if index >= 0 else index, widget, stretch) - 1

    def paintEvent(self, event: QPaintEvent) -> None:
        # QStatusBar.paintEvent minus its message text (the label shows it): the panel, then each visible item's
        # frame, as QStatusBar draws them.
        painter = QPainter(self)
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, option, painter, self)
        for child in self.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            if not child.isVisible() or child.isWindow() or child is self.message or isinstance(child, QSizeGrip):
                continue
            item = QStyleOption()
            item.rect = child.geometry().adjusted(-2, -1, 2, 1)
            item.palette = self.palette()
            item.state = QStyle.StateFlag.State_None
            if event.rect().intersects(item.rect):
                self.style().drawPrimitive(QStyle.PrimitiveElement.PE_FrameStatusBarItem, item, painter, child)
        painter.end()
