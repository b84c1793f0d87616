"""A tool call in the chat: which tool, the arguments the model wrote, where the call is (writing, waiting for your
approval, running, done), the approval buttons while it waits, and the result, folded away until opened."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QVBoxLayout, QWidget

from gpt_oss_desktop.app.chat import stats
from gpt_oss_desktop.app.chat.text_views import ElidedLabel, FitTextBrowser
from gpt_oss_desktop.app.chat.tool_calls import Approval, CallState, ToolCallRecord, call_title, tool_name
from gpt_oss_desktop.engine.tools.base import ToolStatus
from gpt_oss_desktop.engine.tools.browser.names import is_browser_call

# Arguments and results scroll inside the card past these heights, so a long program or a long output does not
# push the answer far down the chat.
_ARGUMENTS_MAX_HEIGHT: Final = 180
_RESULT_MAX_HEIGHT: Final = 220

_QUESTION: Final = "Run this call?"
_QUESTION_CHARS: Final = 100
_STATE_WORDS: Final = {
    CallState.WRITING: "writing the call…",
    CallState.WAITING: "waiting for your approval",
    CallState.RUNNING: "running…",
}
_STATUS_WORDS: Final = {
    ToolStatus.OK: "done",
    ToolStatus.ERROR: "failed",
    ToolStatus.TIMEOUT: "timed out",
    ToolStatus.CANCELLED: "stopped",
    ToolStatus.DENIED: "not run",
    ToolStatus.UNKNOWN_TOOL: "no such tool",
    ToolStatus.BAD_ARGUMENTS: "bad arguments",
    ToolStatus.UNAVAILABLE: "unavailable",
}


def status_text(call: ToolCallRecord) -> str:
    """The card's status: "running…", "done · 0.12 s", "not run · you declined", …"""
    if call.status is None:
        return _STATE_WORDS.get(call.state, "")
    words = _STATUS_WORDS[call.status]
    if call.status is ToolStatus.DENIED:
        reason = {"denied": "you declined", "never": "blocked in Tools settings", "limit": "too many calls"}
        return f"{words} · {reason.get(call.approval, 'refused')}"
    if call.status in (ToolStatus.OK, ToolStatus.ERROR, ToolStatus.TIMEOUT) and call.seconds > 0:
        return f"{words} · {stats.seconds(call.seconds)}"
    return words


def _middle_cut(text: str) -> str:
    keep = _QUESTION_CHARS // 2 - 1
    return f"{text[:keep]}…{text[-keep:]}"


def _monospace(view: FitTextBrowser) -> None:
    view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
    view.setLineWrapMode(FitTextBrowser.LineWrapMode.WidgetWidth)


class ToolCallCard(QFrame):
    """One call's card inside an answer.

    Signals:
        decided(object): the user's :class:`~app.chat.tool_calls.Approval` (Run, Always run, Don't run).
    """

    # object: an Approval (a StrEnum, which a Signal cannot declare as its type)
    decided = Signal(object)

    def __init__(self, recipient: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "reasoning")  # the sunken panel look of the reasoning (app/shell/theme.py)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.call: ToolCallRecord | None = None
        self._arguments = ""

        # Plain text (a tool's name and a query are the model's text, never markup), shortened with "…" to the room
        # the card has: a long search query must not widen the answer past the window.
        self.title = ElidedLabel(self)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.status = QLabel(self)
        self.status.setProperty("role", "caption")
        self.status.setAccessibleName("Tool call status")
        self.result_button = QToolButton(self)
        self.result_button.setText("Result")
        self.result_button.setCheckable(True)
        self.result_button.setAutoRaise(True)
        self.result_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.result_button.setProperty("iconName", "chevron-right")
        self.result_button.setAccessibleName("Show or hide the tool's result")
        self.result_button.toggled.connect(self._show_result)
        self.result_button.hide()
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(self.title, 1)  # it takes the room left, shortened to it (ElidedLabel)
        header.addWidget(self.status)
        header.addWidget(self.result_button)

        self.arguments = FitTextBrowser(self, max_height=_ARGUMENTS_MAX_HEIGHT)
        self.arguments.setAccessibleName("Tool call arguments")
        _monospace(self.arguments)

        self.question = QLabel(_QUESTION, self)
        self.question.setTextFormat(Qt.TextFormat.PlainText)  # an address or a query the model wrote: never markup
        self.question.setWordWrap(True)
        self.run_button = QPushButton("Run", self)
        self.run_button.setProperty("role", "primary")
        self.always_button = QPushButton(self)
        self.deny_button = QPushButton("Don't run", self)
        self.run_button.clicked.connect(lambda: self._decide(Approval.ONCE))
        self.always_button.clicked.connect(lambda: self._decide(Approval.ALWAYS))
        self.deny_button.clicked.connect(lambda: self._decide(Approval.DENY))
        approval = QHBoxLayout()
        approval.setContentsMargins(0, 0, 0, 0)
        approval.addWidget(self.question, 1)
        for button in (self.run_button, self.always_button, self.deny_button):
            approval.addWidget(button)
        self.approval_row = QWidget(self)
        self.approval_row.setLayout(approval)
        self.approval_row.hide()

        self.result = FitTextBrowser(self, max_height=_RESULT_MAX_HEIGHT)
        self.result.setAccessibleName("Tool result")
        _monospace(self.result)
        self.result.hide()
        self.notice = QLabel(self)
        self.notice.setWordWrap(True)
        self.notice.setProperty("role", "error")
        self.notice.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 6)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.arguments)
        layout.addWidget(self.approval_row)
        layout.addWidget(self.result)
        layout.addWidget(self.notice)
        self._set_title(recipient)
        self.status.setText(_STATE_WORDS[CallState.WRITING])

    # -- updates ----------------------------------------------------------------------------------------------

    def append_arguments(self, text: str) -> None:
        """More of the call the model is writing."""
        self._arguments += text
        self.arguments.append_plain(text)

    def show_call(self, call: ToolCallRecord) -> None:
        """Draw ``call`` as it is now (the card follows it through waiting, running and done)."""
        self.call = call
        self._set_title(call.recipient, call.arguments)
        if call.arguments != self._arguments:
            self._arguments = call.arguments
            self.arguments.setPlainText(call.arguments)
        self.status.setText(status_text(call))
        waiting = call.state is CallState.WAITING
        self.approval_row.setVisible(waiting)
        if waiting:
            question = call.question or _QUESTION
            # A long address would widen the card (it has no spaces to wrap at): its middle gives way, the tooltip
            # holds it whole.
            self.question.setText(question if len(question) <= _QUESTION_CHARS else _middle_cut(question))
            self.question.setToolTip(question if len(question) > _QUESTION_CHARS else "")
            # The browser's three calls share one switch and one policy (app/tools/tool_settings.setting_key).
            self.always_button.setText(
                "Always browse" if is_browser_call(call.recipient) else f"Always run {call.name}"
            )
            self.run_button.setFocus()
        if call.state is CallState.DONE:
            self.result.setPlainText(call.output or "(no output)")
            self.result_button.show()
        self.notice.setText(call.notice)
        self.notice.setVisible(bool(call.notice))

    # -- private ----------------------------------------------------------------------------------------------

    def _set_title(self, recipient: str, arguments: str = "") -> None:
        name = tool_name(recipient)
        self.title.set_full_text(call_title(recipient, arguments))
        self.setAccessibleName(f"Tool call: {name}")

    def _decide(self, decision: Approval) -> None:
        self.approval_row.hide()
        self.decided.emit(decision)

    def _show_result(self, shown: bool) -> None:
        self.result.setVisible(shown)
        self.result_button.setProperty("iconName", "chevron-down" if shown else "chevron-right")
        self.result_button.style().unpolish(self.result_button)
        self.result_button.style().polish(self.result_button)
