"""One column of an effort comparison: its reasoning (collapsible, live), its answer, its numbers, and Continue."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.chat.reasoning_panel import ReasoningPanel
from gpt_oss_desktop.app.chat.stats import AnswerStats, count, seconds
from gpt_oss_desktop.app.chat.text_views import AnswerView
from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.harmony import ReasoningEffort

_NOT_YET = "–"
# Shown in each column before anything is asked: what the effort does, so the empty columns teach something.
IDLE_TEXT = {
    ReasoningEffort.LOW: "Low effort: a short line of reasoning, the quickest answer.",
    ReasoningEffort.MEDIUM: "Medium effort: a few steps of reasoning, the usual balance.",
    ReasoningEffort.HIGH: "High effort: reasons step by step and checks; slowest, most careful.",
}
_FINISH_NOTES = {
    FinishReason.LENGTH: "Stopped at the token limit",
    FinishReason.CANCELLED: "Stopped",
    FinishReason.ERROR: "Failed",
}


class CompareColumn(QFrame):
    """Streams one effort's answer. Numbers are estimates (one per streamed piece) until :meth:`finish`.

    A column starts idle (it says what its effort does); :meth:`begin` readies it for an answer.

    Signals:
        continue_requested(): the user wants to carry on from this column as a normal chat.
    """

    continue_requested = Signal()

    def __init__(self, effort: ReasoningEffort, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.effort = effort
        self._reasoning_text = ""
        self._answer_text = ""
        self._answer_pieces = 0
        self.setObjectName("compareColumn")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"{effort.value.capitalize()} effort")

        self.title = QLabel(f"<b>{effort.value.capitalize()} effort</b>", self)
        self.idle_note = QLabel(IDLE_TEXT[effort], self)
        self.idle_note.setWordWrap(True)
        self.idle_note.setAccessibleName("What this effort does")
        self.idle_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.reasoning = ReasoningPanel(self)
        self.reasoning.hide()  # until begin(): nothing is thinking yet
        self.answer = AnswerView(self)
        self.answer.hide()
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        self.note.setAccessibleName("Column status")
        self.note.hide()
        body = QWidget()
        body_layout = QVBoxLayout(body)
        body_layout.setContentsMargins(0, 0, 4, 0)
        body_layout.addWidget(self.idle_note)
        body_layout.addWidget(self.reasoning)
        body_layout.addWidget(self.answer)
        body_layout.addWidget(self.note)
        body_layout.addStretch(1)
        # Each column scrolls on its own, so a long high-effort answer never pushes the others' numbers away.
        self.body_scroll = QScrollArea(self)
        self.body_scroll.setWidgetResizable(True)
        self.body_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.body_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.body_scroll.setWidget(body)

        self.reasoning_tokens = self._value("Reasoning tokens")
        self.answer_tokens = self._value("Answer tokens")
        self.first_answer = self._value("Time to first answer token")
        self.total_time = self._value("Total time")
        self.tokens_per_second = self._value("Tokens per second")
        numbers = QFormLayout()
        numbers.setContentsMargins(0, 0, 0, 0)
        numbers.addRow("Reasoning tokens", self.reasoning_tokens)
        numbers.addRow("Answer tokens", self.answer_tokens)
        numbers.addRow("First answer token", self.first_answer)
        numbers.addRow("Total time", self.total_time)
        numbers.addRow("tok/s", self.tokens_per_second)

        self.continue_button = QPushButton("Continue from this column", self)
        self.continue_button.setAccessibleName(f"Continue from the {effort.value} effort answer")
        self.continue_button.setToolTip("Open this answer as a normal chat and keep talking")
        self.continue_button.setEnabled(False)
        self.continue_button.clicked.connect(self.continue_requested)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)
        layout.addWidget(self.title)
        layout.addWidget(self.body_scroll, 1)
        layout.addLayout(numbers)
        layout.addWidget(self.continue_button)

    @property
    def idle(self) -> bool:
        """Nothing asked yet (see :meth:`begin`)."""
        return not self.idle_note.isHidden()

    def begin(self) -> None:
        """An answer is on its way (or a saved one is about to be drawn): the reasoning panel replaces the idle
        note."""
        self.idle_note.hide()
        self.reasoning.show()

    def _value(self, name: str) -> QLabel:
        label = QLabel(_NOT_YET, self)
        label.setAccessibleName(name)
        label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    # -- streaming ----------------------------------------------------------------------------------------------

    @property
    def reasoning_text(self) -> str:
        return self._reasoning_text

    @property
    def answer_text(self) -> str:
        return self._answer_text

    def append_reasoning(self, text: str, tool: str | None = None) -> None:
        self._reasoning_text += text
        self.reasoning.append(text, tool)
        self.reasoning_tokens.setText(f"~{count(self.reasoning.deltas)}")

    def append_answer(self, text: str, first_answer_seconds: float | None = None) -> None:
        if not self._answer_text:
            self.reasoning.answer_started(first_answer_seconds, self.reasoning.deltas)
            self.answer.show()
            if first_answer_seconds is not None:
                self.first_answer.setText(seconds(first_answer_seconds))
        self._answer_text += text
        self._answer_pieces += 1
        self.answer.append_text(text)
        self.answer_tokens.setText(f"~{count(self._answer_pieces)}")

    def finish(self, stats: AnswerStats, *, first_answer_seconds: float | None, total_seconds: float | None) -> None:
        """The column's stream ended: exact numbers, final render, Continue enabled."""
        self.answer.flush()
        if stats.reasoning_tokens or self._reasoning_text:
            self.reasoning.finish(stats.thinking_seconds, stats.reasoning_tokens)
            if not self._answer_text:
                self.reasoning.answer_started(stats.thinking_seconds, stats.reasoning_tokens)
        else:
            self.reasoning.hide()
        self.reasoning_tokens.setText(count(stats.reasoning_tokens))
        self.answer_tokens.setText(count(stats.answer_tokens))
        self.first_answer.setText(_NOT_YET if first_answer_seconds is None else seconds(first_answer_seconds))
        self.total_time.setText(_NOT_YET if total_seconds is None else seconds(total_seconds))
        self.tokens_per_second.setText(f"{stats.tokens_per_second:.1f}" if stats.tokens_per_second > 0 else _NOT_YET)
        note = _FINISH_NOTES.get(stats.finish_reason)
        if note:
            self.show_note(note)
        self.continue_button.setEnabled(True)

    def show_note(self, text: str, *, error: bool = False) -> None:
        """A line under the answer: why it stopped, or an error."""
        self.note.setText(f"⚠ {text}" if error else text)
        self.note.setForegroundRole(QPalette.ColorRole.WindowText if error else QPalette.ColorRole.PlaceholderText)
        self.note.show()
