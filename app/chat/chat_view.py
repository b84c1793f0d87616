"""The scrolling chat pane: user bubbles and assistant messages (reasoning panel, answer, stats, actions)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from PySide6.QtCore import QEvent, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QResizeEvent
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.chat.attachment_chips import AttachmentChip
from gpt_oss_desktop.app.chat.new_chat_intro import NewChatIntro
from gpt_oss_desktop.app.chat.reasoning_panel import ReasoningPanel
from gpt_oss_desktop.app.chat.stats import AnswerStats, stats_line
from gpt_oss_desktop.app.chat.text_views import AnswerView
from gpt_oss_desktop.app.chat.tool_call_card import ToolCallCard
from gpt_oss_desktop.app.chat.tool_calls import ToolCallRecord
from gpt_oss_desktop.app.chat.version_switcher import VersionSwitcher
from gpt_oss_desktop.app.history.attachments import Attachment
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.tools.browser.citations import cursor_urls
from gpt_oss_desktop.engine.tools.browser.names import is_browser_call

# Long lines are hard to read; the chat column stops growing here and centres in wide windows. READING_WIDTH is
# the widest a message card gets; the window keeps the composer to it too, so the two line up (as in ChatGPT).
READING_WIDTH: Final = 828
_COLUMN_MARGIN = 16
_COLUMN_MAX_WIDTH = READING_WIDTH + 2 * _COLUMN_MARGIN
# Answer text is re-rendered at most this often while streaming, so the per-token cost stays flat.
_RENDER_INTERVAL_MS = 50
# Within this many pixels of the bottom the view counts as "at the bottom" and keeps following new text.
_STICKY_PIXELS = 24
# A user bubble is at most this share of the column wide, right-aligned, so the two sides read as a conversation.
_BUBBLE_WIDTH_SHARE = 0.8
# Under a saved answer that was cut off by a crash or a kill (its row is still marked incomplete).
_INTERRUPTED = "interrupted · partial answer"


class UserBubble(QFrame):
    """A user's message: selectable text in a tinted, rounded bubble on the right (the look is the theme's:
    app/shell/theme.py styles ``role="user-bubble"``), a chip per attached file (its name, size and tokens, never
    its content), an Edit button and, once it was edited, its versions (‹ 1/2 ›).

    Signals:
        edit_requested(): the user wants to edit this message (and branch the chat from it).
    """

    edit_requested = Signal()

    def __init__(self, text: str, attachments: Sequence[Attachment] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("userBubble")
        self.setProperty("role", "user-bubble")
        self.attachments = tuple(attachments)
        self.label = QLabel(text, self)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        )
        self.label.setAccessibleName("Your message")
        self.label.setVisible(bool(text))  # files sent alone: no empty line above them
        self.chips = [AttachmentChip(attachment, removable=False, parent=self) for attachment in self.attachments]
        self.edit_button = QToolButton(self)
        self.edit_button.setText("Edit")
        self.edit_button.setProperty("iconName", "pencil")
        self.edit_button.setProperty("role", "message-action")
        self.edit_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.edit_button.setAutoRaise(True)
        self.edit_button.setAccessibleName("Edit this message")
        self.edit_button.setToolTip("Edit and send again: the chat goes on from here, and the old version stays")
        self.edit_button.clicked.connect(self.edit_requested)
        self.versions = VersionSwitcher("message", self)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addStretch(1)
        row.addWidget(self.versions)
        row.addWidget(self.edit_button)
        self._box = QVBoxLayout(self)
        self._box.setContentsMargins(14, 10, 14, 8)
        self._box.setSpacing(2)
        self._box.addWidget(self.label)
        for chip in self.chips:
            self._box.addWidget(chip, 0, Qt.AlignmentFlag.AlignLeft)
        self._box.addLayout(row)
        self._width: int | None = None  # the longest line (or the button row) plus margins, once measured

    # Right-aligned in the column, the bubble is as wide as its longest line (up to its maximum width), and as tall
    # as its content at that width: QLabel's own hint would wrap short messages into narrow, clipped columns.
    # The layout asks often (each streamed answer re-lays the column out), so the measured width is kept.

    def sizeHint(self) -> QSize:
        width = min(self._natural_width(), self.maximumWidth())
        return QSize(width, self.heightForWidth(width))

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._box.heightForWidth(min(width, self._natural_width()))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._width = None  # a new theme or font: measure again
        super().changeEvent(event)

    def _natural_width(self) -> int:
        if self._width is None:
            margins = self._box.contentsMargins()
            lines = self.label.fontMetrics().boundingRect(QRect(0, 0, 1 << 20, 1 << 20), 0, self.label.text())
            widest = max([lines.width() + 2, *(chip.sizeHint().width() for chip in self.chips)])
            text = widest + margins.left() + margins.right()
            self._width = max(text, self._box.minimumSize().width())
        return self._width


class AssistantMessage(QFrame):
    """One answer, as a card: effort badge, reasoning panel, streamed answer, stats line and actions.

    Signals:
        regenerate_requested(object): a ReasoningEffort, or None for "the same effort again".
    """

    # object: ReasoningEffort | None, and a Signal type cannot say "or None".
    regenerate_requested = Signal(object)
    branch_requested = Signal()  # a new chat that goes up to this answer

    def __init__(self, effort: ReasoningEffort, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "assistant-card")
        self.effort = effort
        self._answer = ""
        self._answer_started = False

        title = QLabel("<b>gpt-oss</b>", self)
        self.badge = QLabel(self)
        self.badge.setObjectName("effortBadge")
        self.badge.setProperty("role", "badge")  # outlined in both themes
        self.set_effort(effort)
        header = QHBoxLayout()
        header.setContentsMargins(0, 0, 0, 0)
        header.addWidget(title)
        header.addWidget(self.badge)
        header.addStretch(1)

        self.reasoning = ReasoningPanel(self)
        self.tool_cards: list[ToolCallCard] = []
        self._tool_box = QVBoxLayout()  # the tool calls, in order, between the reasoning and the answer
        self._tool_box.setContentsMargins(0, 0, 0, 0)
        self._tool_box.setSpacing(6)
        self.answer = AnswerView(self)
        self.stats = QLabel(self)
        self.stats.setProperty("role", "caption")  # small and muted (app/shell/theme.py)
        self.stats.setAccessibleName("Answer statistics")
        self.stats.setWordWrap(True)
        self.stats.hide()
        self.error = QLabel(self)
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Error")
        self.error.setProperty("role", "error")
        self.error.hide()

        self.regenerate_button = QToolButton(self)
        self.regenerate_button.setText("Regenerate")
        self.regenerate_button.setProperty("iconName", "refresh-cw")
        self.regenerate_button.setAccessibleName("Regenerate answer")
        self.regenerate_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.regenerate_button.clicked.connect(lambda: self.regenerate_requested.emit(None))
        menu = QMenu(self.regenerate_button)
        self.regenerate_actions: dict[ReasoningEffort, QAction] = {}
        for level in ReasoningEffort:
            action = menu.addAction(f"Regenerate at {level.value} effort")
            action.triggered.connect(lambda _=False, e=level: self.regenerate_requested.emit(e))
            self.regenerate_actions[level] = action
        self.regenerate_button.setMenu(menu)
        self.copy_button = QToolButton(self)
        self.copy_button.setText("Copy")
        self.copy_button.setProperty("iconName", "copy")
        self.copy_button.setAccessibleName("Copy answer")
        self.copy_button.clicked.connect(self._copy)
        self.branch_button = QToolButton(self)
        self.branch_button.setText("Branch")
        self.branch_button.setProperty("iconName", "git-branch")
        self.branch_button.setAccessibleName("Branch into a new chat from this answer")
        self.branch_button.setToolTip("A new chat with the conversation up to this answer, to go on another way")
        self.branch_button.clicked.connect(self.branch_requested.emit)
        for button in (self.regenerate_button, self.copy_button, self.branch_button):
            button.setProperty("role", "message-action")
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.versions = VersionSwitcher("answer", self)
        actions = QHBoxLayout()
        actions.setContentsMargins(0, 0, 0, 0)
        actions.setSpacing(2)
        actions.addWidget(self.versions)
        actions.addWidget(self.regenerate_button)
        actions.addWidget(self.copy_button)
        actions.addWidget(self.branch_button)
        actions.addStretch(1)
        self.actions_row = QWidget(self)
        self.actions_row.setLayout(actions)
        self.actions_row.hide()

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 10)
        layout.setSpacing(8)
        layout.addLayout(header)
        layout.addWidget(self.reasoning)
        layout.addLayout(self._tool_box)
        layout.addWidget(self.answer)
        layout.addWidget(self.error)
        layout.addWidget(self.stats)
        layout.addWidget(self.actions_row)

        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(_RENDER_INTERVAL_MS)
        self._render_timer.timeout.connect(self._render_answer)
        self.answer.hide()

    # -- streaming ----------------------------------------------------------------------------------------------

    def append_reasoning(self, text: str, tool: str | None = None) -> None:
        self.reasoning.append(text, tool)

    def append_tool_call_text(self, recipient: str, text: str) -> ToolCallCard:
        """More of a call the model is writing: into the last card while it is still being written, else a new one."""
        card = self.tool_cards[-1] if self.tool_cards and self.tool_cards[-1].call is None else None
        if card is None:
            card = self._add_card(recipient)
        card.append_arguments(text)
        return card

    def show_tool_call(self, call: ToolCallRecord) -> ToolCallCard:
        """The card of ``call`` (the one its text was written into, or a new one), drawn as the call is now."""
        card = next((c for c in self.tool_cards if c.call is call), None)
        if card is None:
            card = self.tool_cards[-1] if self.tool_cards and self.tool_cards[-1].call is None else None
        if card is None:
            card = self._add_card(call.recipient)
        card.show_call(call)
        if is_browser_call(call.recipient) and call.output:
            # The pages the browser showed: the answer's citations of them become links.
            outputs = [
                c.call.output for c in self.tool_cards if c.call is not None and is_browser_call(c.call.recipient)
            ]
            self.answer.set_citations(cursor_urls(outputs))
        return card

    def _add_card(self, recipient: str) -> ToolCallCard:
        card = ToolCallCard(recipient, self)
        self._tool_box.addWidget(card)
        self.tool_cards.append(card)
        return card

    def append_answer(self, text: str, thinking_seconds: float | None = None) -> None:
        if not self._answer_started:
            self._answer_started = True
            self.reasoning.answer_started(thinking_seconds, self.reasoning.deltas)
            self.answer.show()
        self._answer += text
        if not self._render_timer.isActive():
            self._render_timer.start()

    def finish(self, stats: AnswerStats, *, interrupted: bool = False) -> None:
        """The stream ended: final render, reasoning header, stats, actions.

        ``interrupted``: a saved answer whose stream never ended (the app died mid-answer): the statistics are not
        known, so the line under it says so instead.
        """
        self._render_timer.stop()
        self._render_answer()
        self.answer.flush()
        if stats.reasoning_tokens or self.reasoning.text():
            self.reasoning.finish(stats.thinking_seconds, stats.reasoning_tokens)
            if not self._answer_started:
                self.reasoning.answer_started(stats.thinking_seconds, stats.reasoning_tokens)
        else:
            self.reasoning.hide()
        self.stats.setText(_INTERRUPTED if interrupted else stats_line(stats))
        self.stats.show()
        self.actions_row.show()

    def show_error(self, message: str) -> None:
        self._render_timer.stop()
        self._render_answer()
        self.answer.flush()
        if not self.reasoning.text():
            self.reasoning.hide()
        self.error.setText(f"⚠ {message}")
        self.error.show()
        # The answer failed (a dropped connection, a refused request): Regenerate is how it is retried.
        self.regenerate_button.setText("Retry")
        self.regenerate_button.setAccessibleName("Retry answer")
        self.actions_row.show()

    # -- state --------------------------------------------------------------------------------------------------

    @property
    def answer_text(self) -> str:
        return self._answer

    def set_effort(self, effort: ReasoningEffort) -> None:
        self.effort = effort
        self.badge.setText(f"{effort.value} effort")
        self.badge.setAccessibleName(f"Reasoning effort: {effort.value}")

    def set_actions_enabled(self, enabled: bool) -> None:
        """Only the last answer can be regenerated (an earlier one would orphan the turns after it)."""
        self.regenerate_button.setVisible(enabled)

    def _render_answer(self) -> None:
        self.answer.set_text(self._answer)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self._answer)


class ChatView(QScrollArea):
    """The chat column. Follows new text while scrolled to the bottom; stops once the user scrolls up.

    An empty chat shows :attr:`intro` (example prompts and a line on effort) until its first message.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAccessibleName("Conversation")
        self._sticky = True

        self.column = QWidget()
        self.column.setMaximumWidth(_COLUMN_MAX_WIDTH)
        self.column.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._layout = QVBoxLayout(self.column)
        self._layout.setContentsMargins(_COLUMN_MARGIN, _COLUMN_MARGIN, _COLUMN_MARGIN, _COLUMN_MARGIN)
        self._layout.setSpacing(14)
        self.intro = NewChatIntro(self.column)
        self._layout.addWidget(self.intro)
        self._layout.addStretch(1)
        outer = QWidget()
        row = QHBoxLayout(outer)
        row.setContentsMargins(0, 0, 0, 0)
        # Side stretches only get space once the column reaches its maximum width, which centres it.
        row.addStretch(1)
        row.addWidget(self.column, 1000)
        row.addStretch(1)
        self.setWidget(outer)

        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)

    @property
    def following(self) -> bool:
        """Whether new text scrolls the view (False after the user scrolled up)."""
        return self._sticky

    def add_user(self, text: str, attachments: Sequence[Attachment] = ()) -> UserBubble:
        bubble = UserBubble(text, attachments)
        bubble.setMaximumWidth(self._bubble_width())
        self._insert(bubble, Qt.AlignmentFlag.AlignRight)
        return bubble

    def add_assistant(self, effort: ReasoningEffort) -> AssistantMessage:
        message = AssistantMessage(effort)
        self._insert(message)
        return message

    def remove(self, widget: QWidget) -> None:
        self._layout.removeWidget(widget)
        widget.hide()
        widget.deleteLater()
        self.intro.setVisible(not self.messages())

    def clear(self) -> None:
        for widget in self.messages():
            self.remove(widget)
        self.intro.show()
        self._sticky = True

    def messages(self) -> list[QWidget]:
        """The messages on screen, oldest first (the intro is not one)."""
        items = (self._layout.itemAt(i) for i in range(self._layout.count()))
        return [w for item in items if item is not None and (w := item.widget()) is not None and w is not self.intro]

    def scroll_to_bottom(self) -> None:
        self._sticky = True
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def _insert(self, widget: QWidget, alignment: Qt.AlignmentFlag | None = None) -> None:
        # Before the trailing stretch, which keeps a short chat at the top of the pane.
        self.intro.hide()
        self._layout.insertWidget(self._layout.count() - 1, widget, 0, alignment or Qt.AlignmentFlag(0))
        self.scroll_to_bottom()

    def _bubble_width(self) -> int:
        margins = self._layout.contentsMargins()
        column = min(self.viewport().width(), _COLUMN_MAX_WIDTH) - margins.left() - margins.right()
        return max(120, int(column * _BUBBLE_WIDTH_SHARE))

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        width = self._bubble_width()
        for widget in self.messages():
            if isinstance(widget, UserBubble):
                widget.setMaximumWidth(width)

    def _on_scrolled(self, value: int) -> None:
        self._sticky = value >= self.verticalScrollBar().maximum() - _STICKY_PIXELS

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        # Growing content changes the range but not the value, so "was at the bottom" is still known here.
        if self._sticky:
            self.verticalScrollBar().setValue(maximum)
