"""The window's status bar: its temporary message (``showMessage``) elides with a tooltip instead of being cut off
by the permanent widgets at the right, as it was at 800 px; and those widgets (:class:`ModelStatus`): the loaded
model, its device, the memory used, the context used, and a model load's progress with its Cancel button."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import psutil
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QLabel,
    QProgressBar,
    QPushButton,
    QSizeGrip,
    QStatusBar,
    QStyle,
    QStyleOption,
    QWidget,
)

from gpt_oss_desktop.app.backends.chat_backend import ModelInfo
from gpt_oss_desktop.app.chat import stats
from gpt_oss_desktop.app.chat.text_views import ElidedLabel

_MEMORY_REFRESH_MS: Final = 2000
_TOY_TOOLTIP: Final = "A toy model trained on synthetic arithmetic-style questions: its answers are usually wrong."
_Q8_TOOLTIP: Final = (
    "Attention and unembedding weights quantised to 8 bits at load time (Model ▸ 8-bit attention weights): "
    "smaller and faster, slightly less exact"
)


class StatusBar(QStatusBar):
    """A QStatusBar whose temporary message is shown by an eliding label at its left.

    ``showMessage``, ``clearMessage``, ``currentMessage`` and timeouts work as in QStatusBar (the message is still
    QStatusBar's own); only the drawing differs: QStatusBar paints it clipped at the first permanent widget, mid-word.
    The label is the first permanent widget, stretched; :meth:`insertPermanentWidget` counts indexes after it, so
    widgets inserted "at the left" (index 0) go right of the message.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = ElidedLabel(self)
        self.message.setAccessibleName("Status message")
        self.message.setContentsMargins(6, 0, 6, 0)
        super().insertPermanentWidget(0, self.message, 1)
        self.messageChanged.connect(self.message.set_full_text)

    def insertPermanentWidget(self, index: int, widget: QWidget, stretch: int | None = 0) -> int:
        return super().insertPermanentWidget(index + 1 if index >= 0 else index, widget, stretch or 0) - 1

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


class ModelStatus(QObject):
    """The status bar's permanent widgets, left to right: a model load's progress and Cancel button (shown while a
    model loads), the model's name, its device, the process's memory (refreshed every 2 s) and the context used.

    ``cancel`` is what the Cancel button (and nothing else here) calls.
    """

    def __init__(self, bar: StatusBar, cancel: Callable[[], None]) -> None:
        super().__init__(bar)
        self.model_label = QLabel(bar)
        self.model_label.setAccessibleName("Model")
        self.device_label = QLabel(bar)
        self.device_label.setAccessibleName("Device")
        self.memory_label = QLabel(bar)
        self.memory_label.setAccessibleName("Memory used")
        self.context_label = QLabel(bar)
        self.context_label.setAccessibleName("Context used")
        self.progress = QProgressBar(bar)
        self.progress.setAccessibleName("Model loading progress")
        self.progress.setMaximumWidth(160)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel", bar)
        self.cancel_button.setAccessibleName("Cancel loading the model")
        self.cancel_button.setToolTip("Stop loading the model (Esc)")
        self.cancel_button.clicked.connect(cancel)
        self.cancel_button.hide()
        for label in (self.model_label, self.device_label, self.memory_label, self.context_label):
            label.setContentsMargins(6, 0, 6, 0)
        for widget in (
            self.progress,
            self.cancel_button,
            self.model_label,
            self.device_label,
            self.memory_label,
            self.context_label,
        ):
            bar.addPermanentWidget(widget)
        self._process = psutil.Process()
        self._memory_timer = QTimer(self)
        self._memory_timer.timeout.connect(self.update_memory)
        self._memory_timer.start(_MEMORY_REFRESH_MS)
        self.update_memory()

    def show_model(self, info: ModelInfo | None) -> None:
        """The loaded model's name and device (a toy's name explains itself in a tooltip); None: "No model"."""
        if info is None:
            self.model_label.setText("No model")
            self.model_label.setToolTip("")
            self.device_label.setText("")
            self.device_label.setToolTip("")
            self.context_label.setText("")
            return
        self.model_label.setText(info.name)
        self.model_label.setToolTip(_TOY_TOOLTIP if info.name.endswith("(toy)") else "")
        q8 = info.weights == "q8"
        self.device_label.setText(f"{info.device} · 8-bit weights" if q8 else info.device)
        self.device_label.setToolTip(_Q8_TOOLTIP if q8 else "")

    def show_context(self, used: int, total: int) -> None:
        self.context_label.setText(stats.context_usage(used, total))

    def clear_context(self) -> None:
        self.context_label.clear()

    def set_loading(self, loading: bool) -> None:
        """Show (True) or hide the load's progress bar and Cancel button."""
        self.progress.setVisible(loading)
        self.cancel_button.setVisible(loading)

    def set_progress(self, fraction: float) -> None:
        self.progress.setValue(round(fraction * 100))

    def update_memory(self) -> None:
        self.memory_label.setText(f"Memory {stats.memory(self._process.memory_info().rss)}")

    def stop(self) -> None:
        """No more memory refreshes (the window is closing)."""
        self._memory_timer.stop()
