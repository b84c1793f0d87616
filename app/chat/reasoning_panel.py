"""The collapsible panel that shows one answer's reasoning, live while the model thinks."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QToolButton, QVBoxLayout, QWidget

from gpt_oss_desktop.app.chat import stats
from gpt_oss_desktop.app.chat.rendering import markdown_view
from gpt_oss_desktop.app.chat.text_views import FitTextBrowser

_SLACK = 4  # pixels; see ElidingToolButton.sizeHint
# Long reasoning scrolls inside the panel instead of pushing the answer far down the chat.
_MAX_BODY_HEIGHT = 280


class ElidingToolButton(QToolButton):
    """A tool button whose text is cut with "…" when it has less room than the text needs (the whole text is then
    its tooltip), so a narrow column never shows a header cut mid-word ("Thought for 2.9 s · 12 to").

    :meth:`text` and :meth:`setText` work with the whole text; Qt paints the shortened one.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def text(self) -> str:
        return self._full

    def setText(self, text: str) -> None:
        self._full = text
        self._elide()

    def sizeHint(self) -> QSize:
        # The size the whole text needs, so a layout with room gives all of it.
        hint = super().sizeHint()
        shown = super().text()
        metrics = self.fontMetrics()
        # A few pixels of slack: Qt measures the text for its own hint a pixel or two differently from
        # horizontalAdvance(), and a hint one pixel short would elide the text it was meant to fit.
        width = hint.width() - metrics.horizontalAdvance(shown) + metrics.horizontalAdvance(self._full) + _SLACK
        return QSize(width, hint.height())

    def minimumSizeHint(self) -> QSize:
        # Room for the arrow and a few letters: below the full width the text elides instead of being clipped.
        hint = super().sizeHint()
        return QSize(min(hint.width(), self._chrome() + self.fontMetrics().horizontalAdvance("Thou…")), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _chrome(self) -> int:
        """Width the button needs besides its text (arrow, spacing, padding)."""
        return super().sizeHint().width() - self.fontMetrics().horizontalAdvance(super().text())

    def _elide(self) -> None:
        room = self.width() - self._chrome()
        metrics = self.fontMetrics()
        fits = metrics.horizontalAdvance(self._full) <= room
        shown = self._full if fits else metrics.elidedText(self._full, Qt.TextElideMode.ElideRight, max(room, 0))
        if shown != super().text():
            super().setText(shown)
            self.updateGeometry()
        self.setToolTip(self._full if shown != self._full else "")


class ReasoningPanel(QFrame):
    """Header button ("Thinking…", then "Thought for 12.3 s · 1,843 tokens", or just "Reasoning" for a saved answer
    whose time and count were not recorded) over selectable reasoning text.

    Expanded while the model thinks; :meth:`answer_started` collapses it unless the user opened it themselves.

    Signals:
        expanded_changed(bool): the body was shown or hidden (by the user or by the app).
    """

    expanded_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("reasoningPanel")
        self.setProperty("role", "reasoning")  # a sunken panel inside the answer's card (app/shell/theme.py)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._user_opened = False
        self._live = True
        self._tool_label: str | None = None
        self.deltas = 0  # streamed pieces so far, about one per token: a live estimate until finish() has counts
        # All of the reasoning; the body shows at most markdown_view.DISPLAY_LIMIT_CHARS of it (a runaway loop of
        # megabytes would otherwise freeze the window while Qt lays it out).
        self._parts: list[str] = []
        self._length = 0
        self._shown = 0

        self.header = ElidingToolButton(self)
        self.header.setCheckable(True)
        self.header.setChecked(True)
        self.header.setAutoRaise(True)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setProperty("iconName", "chevron-down")  # the theme draws it; chevron-right when collapsed
        self.header.setText(stats.thinking_header(None, 0, live=True))
        self.header.setAccessibleName("Reasoning")
        self.header.setAccessibleDescription("Show or hide the model's reasoning")
        self.header.clicked.connect(self._on_header_clicked)

        self.not_sent = QLabel("not sent to model", self)
        self.not_sent.setToolTip("Earlier reasoning stays on screen but is left out of later prompts (harmony rule).")
        self.not_sent.setProperty("role", "caption")  # small and muted (app/shell/theme.py)
        self.not_sent.hide()

        self.body = FitTextBrowser(self, max_height=_MAX_BODY_HEIGHT)
        self.body.setAccessibleName("Reasoning text")
        # Reasoning is secondary to the answer: a muted colour from the palette marks it.
        self.body.setStyleSheet("QTextBrowser { background: transparent; color: palette(placeholder-text); }")
        self.body.hide()  # until reasoning arrives (see _show_body)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.header)
        top.addStretch(1)
        top.addWidget(self.not_sent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 8, 6)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addWidget(self.body)

    # -- public API ---------------------------------------------------------------------------------------------

    @property
    def expanded(self) -> bool:
        return self.header.isChecked()

    def text(self) -> str:
        """All of the reasoning, including any past the display limit."""
        if len(self._parts) > 1:
            self._parts = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    @property
    def hidden_chars(self) -> int:
        """Characters of reasoning past the display limit, which the body does not show."""
        return self._length - self._shown

    def append(self, text: str, tool: str | None = None) -> None:
        """Add streamed reasoning; ``tool`` names the recipient when the text is a tool call."""
        if tool != self._tool_label:
            self._tool_label = tool
            if tool is not None:
                text = f"\n[tool call → {tool}] {text}"
        first = not self._length
        self._parts.append(text)
        self._length += len(text)
        if first and text:
            self._show_body()  # held back while empty: shown now if the panel is open
        room = markdown_view.DISPLAY_LIMIT_CHARS - self._shown
        if room > 0:
            shown = text[:room]
            self.body.append_plain(shown)
            self._shown += len(shown)
            if len(shown) < len(text):
                self.body.append_plain(
                    "\n\n[The rest of this reasoning is not shown here. Export the chat for all of it.]"
                )
        self.deltas += 1

    def answer_started(self, seconds: float | None = None, tokens: int | None = 0) -> None:
        """The answer began: the thinking time is known now (exact token counts come with :meth:`finish`; None is
        a count that was not recorded, see :func:`stats.thinking_header`).

        If no reasoning arrived (a model may answer straight away, e.g. the demo on later turns of a chat), there
        was no thinking to report: the panel hides rather than claim "Thought for 1.5 s · 0 tokens"."""
        self._live = False
        if not self._length and not tokens:
            self.hide()
            return
        self.header.setText(stats.thinking_header(seconds, tokens, live=False))
        if not self._user_opened:
            self.set_expanded(False)

    def finish(self, seconds: float | None, tokens: int | None) -> None:
        self._live = False
        self.show()
        self.header.setText(stats.thinking_header(seconds, tokens, live=False))

    def mark_not_sent(self) -> None:
        """Say that this reasoning is left out of later prompts: only true of a chat's earlier turns, so only the
        chat calls this (a comparison has no later prompt)."""
        self.not_sent.show()

    def set_expanded(self, expanded: bool) -> None:
        self.header.setChecked(expanded)
        self._apply()

    # -- private ------------------------------------------------------------------------------------------------

    def _on_header_clicked(self, checked: bool) -> None:
        self._user_opened = checked
        self._apply()

    def _apply(self) -> None:
        expanded = self.header.isChecked()
        self.header.setProperty("iconName", "chevron-down" if expanded else "chevron-right")
        # The stylesheet sets icons when it polishes a widget: polish again for the new property.
        self.header.style().unpolish(self.header)
        self.header.style().polish(self.header)
        self._show_body()
        self.expanded_changed.emit(expanded)

    def _show_body(self) -> None:
        # An open panel with nothing in it yet (the question waits for the CPU kernels, or for the first reasoning
        # token) is just its header: an empty box says nothing.
        self.body.setVisible(self.header.isChecked() and self._length > 0)
