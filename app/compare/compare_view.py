"""Compare mode: one prompt answered at low, medium and high effort side by side, live, with what each effort cost.

A :class:`~app.chat.chat_session.ChatSession` sends the three requests to the backend as one batch
(:meth:`app.backends.chat_backend.ChatBackend.stream_compare`), so on the local engine they share every read of the
weights; this view draws what it reports. Each column streams its reasoning and answer; when all three are done a
summary says whether the answers agree and how many times the tokens and time of low effort high effort took.

The prompt takes attached files as the chat's composer does (the paperclip, files dropped on the view, chips, the
same refusals and the same check that they fit the context; :class:`~app.chat.attachment_controls.AttachmentControls`),
and every column reads them as a chat's question does.

With a store, a comparison is saved as its own kind of history entry (``kind="comparison"``: the prompt with its
attached files, any context, and one answer per column) as soon as the engine accepts it; each column is written as
it streams and in full when it finishes. Any column can be continued as a normal chat (the files go with its
prompt), and the comparison exported to Markdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QPalette, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.backends import kernel_preparation
from gpt_oss_desktop.app.backends.chat_backend import ChatBackend
from gpt_oss_desktop.app.backends.kernel_preparation import KernelPreparation
from gpt_oss_desktop.app.chat import stats
from gpt_oss_desktop.app.chat.attachment_controls import AttachmentControls
from gpt_oss_desktop.app.chat.attachments import ContextRoom, conversation_tokens
from gpt_oss_desktop.app.chat.chat_session import ChatListener, ChatSession, CompareRequest, LiveAnswer
from gpt_oss_desktop.app.chat.comparison_record import (
    INCLUDE_CONTEXT_KEY,
    answers_of,
    context_of,
    prompt_attachments_of,
    prompt_of,
)
from gpt_oss_desktop.app.chat.composer import PromptEdit
from gpt_oss_desktop.app.chat.conversation import Conversation
from gpt_oss_desktop.app.compare.compare_column import CompareColumn
from gpt_oss_desktop.app.history import Attachment, Chat, ChatStore, HistoryError, Message, chat_to_markdown
from gpt_oss_desktop.app.history.comparison_summary import (
    ColumnOutcome,
    ComparisonSummary,
    outcome_from_record,
    summarise,
)
from gpt_oss_desktop.app.history.export_dialog import ask_export_path
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.private_files import write_private_text
from gpt_oss_desktop.engine.sampling import SamplingParams

logger = logging.getLogger(__name__)

EFFORTS: Final = tuple(ReasoningEffort)  # column order: low, medium, high
# Narrower than this, a column's answer and numbers get hard to read: below three of them the columns become tabs.
MIN_COLUMN_WIDTH: Final = 260
# The widest the view's content gets (three columns of about 620 px); wider windows centre it.
MAX_WIDTH: Final = 1920
_COLUMN_SPACING: Final = 8
_MARGIN: Final = 12  # around the whole view, so nothing touches the window's edge
IDLE_SUMMARY: Final = "Ask once to see low, medium and high effort side by side, with what each one cost."
# What to do about files that fit an empty context but not what the included chat leaves of it.
FILES_ADVICE: Final = "untick “Include the current chat”, remove some, or compare again to compare anyway"


class CompareView(QWidget):
    """The compare mode page of the main window.

    The three columns stand side by side while each can be at least :data:`MIN_COLUMN_WIDTH` wide, and turn into
    tabs (one effort at a time) when the view is narrower.

    Args:
        backend: where the batch runs.
        store: history to save comparisons in (None: nothing is kept).
        conversation: the current chat, offered as context ("Include the current chat").
        sampling: the sampling settings to use (the composer's).

    Signals:
        busy_changed(bool): a comparison started or ended.
        finished(tuple): a tuple of each column's Done (None for a column that got none) after a comparison.
        saved(int): the comparison's id in the store, after it was created or a column was written.
        continue_requested(object): continue a column as a normal chat: the new chat's id in the store (int), or,
            without a store, the column's thread as a tuple of history Messages.
        status(str): a message for the status bar (e.g. a failed save).
    """

    busy_changed = Signal(bool)
    finished = Signal(tuple)
    saved = Signal(int)
    # object: an int or a tuple of Messages (see above); a Signal has one type per argument.
    continue_requested = Signal(object)
    status = Signal(str)

    def __init__(
        self,
        backend: ChatBackend,
        *,
        store: ChatStore | None = None,
        conversation: Callable[[], Conversation] | None = None,
        sampling: Callable[[], SamplingParams] = SamplingParams,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.backend = backend
        self.store = store
        self.conversation = conversation
        self._sampling = sampling
        # The comparison on screen (app/chat/chat_session.py): it runs the batch and saves it; kept in memory too, so
        # export and continue work without a store.
        self.session: ChatSession | None = None
        self._engine_busy = False
        self._model_loaded = backend.info is not None
        self.kernels: KernelPreparation | None = None  # set by the window: a first-run CPU kernel build to wait for
        self.settings: QSettings | None = None  # set by the window: the export dialog remembers its folder there
        self.summary_result: ComparisonSummary | None = None

        heading = QLabel("<b>Compare efforts</b> — one prompt, answered at low, medium and high effort at once", self)
        heading.setWordWrap(True)
        self.prompt = PromptEdit(self)
        # The keys follow the composer's send-key setting (set_ctrl_enter_sends): Enter by default.
        self.prompt.set_placeholder_format(
            "Ask once, see low, medium and high effort side by side…  ({send} to compare)"
        )
        self.prompt.setAccessibleName("Comparison prompt")
        self.prompt.submitted.connect(self.start)
        # Attached files, as in the chat's composer: dropped anywhere on the view, or picked with the paperclip.
        self.files = AttachmentControls(self, focus=self.prompt, advice=FILES_ADVICE)
        self.files.context_room = self._context_room
        self.prompt.takes_files = True
        self.prompt.files_dropped.connect(self.files.attach_files)
        self.files.take_drops(self)
        self.include_context = QCheckBox("Include the current chat", self)
        self.include_context.setAccessibleName("Include the current chat's context")
        self.include_context.setToolTip("Send the open chat's messages before the prompt, to all three efforts")
        self.run_button = QPushButton("Compare", self)
        self.run_button.setAccessibleName("Run the comparison")
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(lambda: self.start())
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setAccessibleName("Stop the comparison")
        self.stop_button.setToolTip("Stop all three (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.hide()
        self.export_button = QPushButton("Export Markdown…", self)
        self.export_button.setAccessibleName("Export the comparison to Markdown")
        self.export_button.clicked.connect(self.choose_export_file)
        self.export_button.setEnabled(False)
        options = QHBoxLayout()
        options.setSpacing(4)
        options.addWidget(self.files.button)
        options.addWidget(self.include_context, 1)
        side = QVBoxLayout()
        side.setSpacing(4)
        side.addLayout(options)
        side.addStretch(1)
        side.addWidget(self.export_button)
        side.addWidget(self.run_button)
        side.addWidget(self.stop_button)
        # The chips and the notice above the prompt, as in the composer.
        asked = QVBoxLayout()
        asked.setSpacing(6)
        asked.addWidget(self.files.bar)
        asked.addWidget(self.files.notice)
        asked.addWidget(self.prompt)
        top = QHBoxLayout()
        top.addLayout(asked, 1)
        top.addLayout(side)

        # The columns live either in a row (wide) or in tabs (narrow); see _arrange().
        self._row_page = QWidget(self)
        self._columns_row = QHBoxLayout(self._row_page)
        self._columns_row.setContentsMargins(0, 0, 0, 0)
        self._columns_row.setSpacing(_COLUMN_SPACING)
        # A stacked widget is as wide as its widest page even while another shows: the row of three columns must not
        # hold the window wider than 800 px when the columns are tabs (_arrange switches to tabs before it is cramped).
        self._row_page.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.tabs = QTabWidget(self)
        self.tabs.setAccessibleName("Efforts")
        self.tabs.setDocumentMode(True)
        self._columns_stack = QStackedWidget(self)
        self._columns_stack.addWidget(self._row_page)
        self._columns_stack.addWidget(self.tabs)
        self._tabbed = False
        self.columns: list[CompareColumn] = []
        # A reopened comparison that was asked with a chat's context says so; the context itself is in the tooltip.
        self.context_note = QLabel(self)
        self.context_note.setWordWrap(True)
        self.context_note.setAccessibleName("Context of this comparison")
        self.context_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.context_note.hide()
        self.summary = QLabel(self)
        self.summary.setWordWrap(True)
        self.summary.setAccessibleName("Comparison summary")
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        # In a wide window the view keeps to MAX_WIDTH and centres: three columns of a readable width, not a prompt
        # and buttons stretched across 2,000 px (the side stretches only get room past that width).
        self.content = QWidget(self)
        self.content.setMaximumWidth(MAX_WIDTH)
        outer = QHBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addStretch(1)
        outer.addWidget(self.content, 1000)
        outer.addStretch(1)
        layout = QVBoxLayout(self.content)
        layout.setContentsMargins(_MARGIN, _MARGIN, _MARGIN, _MARGIN)
        layout.setSpacing(8)
        layout.addWidget(heading)
        layout.addLayout(top)
        layout.addWidget(self.context_note)
        layout.addWidget(self._columns_stack, 1)
        layout.addWidget(self.summary)
        self._new_columns(idle=True)
        self.summary.setText(IDLE_SUMMARY)
        self._update_controls()

    # -- public API ---------------------------------------------------------------------------------------------

    @property
    def tabbed(self) -> bool:
        """Whether the columns show as tabs (the view is too narrow for three readable columns)."""
        return self._tabbed

    @property
    def running(self) -> bool:
        return self.session is not None and self.session.running

    @property
    def record(self) -> Chat | None:
        """The comparison on screen (saved or not)."""
        return self.session.comparison if self.session is not None else None

    @property
    def chat_id(self) -> int | None:
        """The comparison's id in the store, once it is saved."""
        return self.session.chat_id if self.session is not None else None

    def set_ctrl_enter_sends(self, on: bool) -> None:
        """The send-key setting (the composer's): Ctrl+Enter compares (on) or Enter does (off, the default)."""
        self.prompt.set_ctrl_enter_sends(on)
        self._update_controls()

    def set_model_loaded(self, loaded: bool) -> None:
        self._model_loaded = loaded
        self._update_controls()

    def set_engine_busy(self, busy: bool) -> None:
        """Another job (a chat answer) holds the engine: no comparison may start until it ends."""
        self._engine_busy = busy
        self._update_controls()

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        """The files attached to the prompt, in order (they stay for the next comparison, as the prompt's text does)."""
        return self.files.attachments

    def attach_files(self, paths: Iterable[Path | str]) -> None:
        """Read ``paths`` (on a worker thread) and add each as a chip as it arrives; the ones that cannot be
        attached are named in the notice under the chips."""
        self.files.attach_files(paths)

    def start(self, text: str | None = None) -> asyncio.Task[None] | None:
        """Run the comparison for ``text`` (default: the prompt box) and the attached files. None if it cannot start
        now (the notice says why when it is the files: still being read, or too big for the context)."""
        prompt = (self.prompt.toPlainText() if text is None else text).strip()
        files = self.files.attachments
        if self.running or self._engine_busy or self.backend.info is None or not (prompt or files):
            return None
        if not self.files.ready(prompt):
            return None
        self.files.hide_notice()
        session = ChatSession(self.backend, store=self.store, wait_ready=self._wait_for_kernels)
        session.listener = _ComparisonView(self, session)
        if self.conversation is not None and self.include_context.isChecked():
            session.add_context(self.conversation().turns)
        self.session = session
        self.summary_result = None
        self.context_note.hide()
        self._new_columns(idle=False)
        self.summary.setText("Running low, medium and high effort as one batch…")
        return session.compare(CompareRequest(prompt, EFFORTS, self._sampling(), files))

    def stop(self) -> None:
        """Stop all three columns after their current token; what they have is kept."""
        if self.session is not None:
            self.session.stop()

    def show_saved(self, chat: Chat) -> bool:
        """Show a saved comparison (numbers, reasoning, answers, summary). False while a comparison runs."""
        if self.running or chat.kind != "comparison":
            return False
        answers = answers_of(chat)
        self.session = ChatSession(self.backend, store=self.store)
        self.session.open_comparison(chat)
        self.prompt.setPlainText(prompt_of(chat))
        self.files.set_attachments(prompt_attachments_of(chat))
        self.include_context.setChecked(bool(chat.meta.get(INCLUDE_CONTEXT_KEY)))
        self._show_context(context_of(chat))
        self._new_columns(idle=False)
        for column, message in zip(self.columns, answers, strict=False):
            if message.analysis:
                column.append_reasoning(message.analysis)
            record = stats.AnswerStats.from_record(message.stats)
            first_answer = _number(message.stats.get("first_answer_s"))
            if message.text:
                column.append_answer(message.text, first_answer)
            column.finish(
                record, first_answer_seconds=first_answer, total_seconds=_number(message.stats.get("total_s"))
            )
            if not message.complete:
                column.show_note("Interrupted: partial answer")
        self._show_summary(
            [outcome_from_record(m.effort or str(m.column), m.text, m.stats) for m in answers],
            complete=all(m.complete for m in answers),
        )
        self._update_controls()
        return True

    def _show_context(self, context: list[Message]) -> None:
        if not context:
            self.context_note.hide()
            return
        count = len(context)
        self.context_note.setText(f"Asked with {count} earlier message{'s' if count != 1 else ''} of a chat as context")
        excerpt = "\n\n".join(f"{m.role}: {m.text[:300]}" for m in context[-6:])
        self.context_note.setToolTip(excerpt)
        self.context_note.show()

    def clear(self) -> None:
        """An empty comparison (the prompt box keeps its text). Refused while one runs."""
        if self.running:
            return
        self.context_note.hide()
        self.session, self.summary_result = None, None
        self._new_columns(idle=True)
        self.summary.setText(IDLE_SUMMARY)
        self._update_controls()

    def column_thread(self, column: int) -> tuple[Message, ...]:
        """The comparison seen from one column: context, the prompt and that column's answer."""
        return () if self.record is None else self.record.thread(column)

    def export_markdown(self, path: Path | str) -> bool:
        """Write the comparison on screen to ``path`` as Markdown. False (and a status message) if it fails."""
        if self.record is None:
            return False
        try:
            if self.store is not None and self.chat_id is not None:
                text = self.store.export_markdown(self.chat_id)
            else:
                text = chat_to_markdown(self.record)
            write_private_text(Path(path), text)  # chats are private, exports too
        except (HistoryError, OSError) as exc:
            logger.warning("comparison export to %s failed: %s", path, exc)
            self.status.emit(f"Could not export the comparison: {exc}")
            return False
        self.status.emit(f"Exported to {path}")
        return True

    def choose_export_file(self) -> None:
        if self.record is None:
            return
        path = ask_export_path(
            self,
            self.settings,
            caption="Export comparison",
            title=self.record.title,
            suffix=".md",
            name_filter="Markdown (*.md)",
            fallback="comparison",
        )
        if path is not None:
            self.export_markdown(path)

    # -- running ------------------------------------------------------------------------------------------------

    def _context_room(self) -> ContextRoom | None:
        """The context each column's prompt goes into (asked when files are sent): the whole of it, less the open
        chat when it is included (an estimate from its text). None without a model."""
        info = self.backend.info
        if info is None:
            return None
        chat = self.conversation if self.include_context.isChecked() else None
        return ContextRoom(conversation_tokens(chat().turns) if chat is not None else 0, info.context_length)

    async def _wait_for_kernels(self) -> None:
        info = self.backend.info
        await kernel_preparation.wait_before_answer(self.kernels, info.device if info else None)

    def _on_ended(self) -> None:
        self._update_controls()
        self.busy_changed.emit(False)

    def _on_finished(self, answers: tuple[LiveAnswer, ...]) -> None:
        outcomes = [
            ColumnOutcome(a.effort.value, a.answer, a.done.completion_tokens, a.total_seconds or 0.0)
            for a in answers
            if a.done is not None
        ]
        if len(outcomes) == len(answers):
            self._show_summary(outcomes, complete=True)
        self.finished.emit(tuple(a.done for a in answers))

    def _show_summary(self, outcomes: list[ColumnOutcome], *, complete: bool) -> None:
        if len(outcomes) < 2:
            self.summary.clear()
            return
        self.summary_result = summarise(outcomes)
        text = self.summary_result.text(outcomes[0].effort, outcomes[-1].effort)
        self.summary.setText(text if complete else f"{text} (interrupted)")

    # -- history ------------------------------------------------------------------------------------------------

    def _continue(self, column: int) -> None:
        if self.record is None:
            return
        if self.store is not None and self.chat_id is not None:
            try:
                chat = self.store.continue_from_column(self.chat_id, column)
            except (HistoryError, ValueError) as exc:
                logger.warning("continue from column %d failed: %s", column, exc)
                self.status.emit(f"Could not continue from this column: {exc}")
                return
            self.continue_requested.emit(chat.id)
        else:
            self.continue_requested.emit(self.column_thread(column))

    def _history_failed(self, what: str, exc: HistoryError) -> None:
        logger.warning("%s: %s", what, exc)
        self.status.emit(f"{what}: {exc}")

    # -- widgets ------------------------------------------------------------------------------------------------

    def _new_columns(self, *, idle: bool) -> None:
        """Fresh columns: ``idle`` ones (nothing asked) or ones ready for answers."""
        current_tab = self.tabs.currentIndex()
        self.tabs.clear()  # removes the pages without deleting them
        for column in self.columns:
            self._columns_row.removeWidget(column)
            column.hide()
            column.deleteLater()
        self.columns = []
        for index, effort in enumerate(EFFORTS):
            column = CompareColumn(effort, self._row_page)
            column.continue_requested.connect(lambda i=index: self._continue(i))
            if not idle:
                column.begin()
            self.columns.append(column)
        self._arrange()
        if current_tab >= 0:
            self.tabs.setCurrentIndex(current_tab)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        tabbed = self._wants_tabs(event.size().width())
        if tabbed != self._tabbed:
            self._tabbed = tabbed
            self._arrange()

    @staticmethod
    def _wants_tabs(width: int) -> bool:
        room = width - 2 * _MARGIN - (len(EFFORTS) - 1) * _COLUMN_SPACING
        return room < len(EFFORTS) * MIN_COLUMN_WIDTH

    def _arrange(self) -> None:
        """Put the columns in the row or in the tabs, whichever the width asks for (see resizeEvent)."""
        if self._tabbed:
            for column in self.columns:
                if self.tabs.indexOf(column) < 0:
                    self._columns_row.removeWidget(column)
                    self.tabs.addTab(column, column.effort.value.capitalize())
                column.title.hide()  # the tab says it
            self._columns_stack.setCurrentWidget(self.tabs)
        else:
            self.tabs.clear()
            for column in self.columns:
                if self._columns_row.indexOf(column) < 0:
                    self._columns_row.addWidget(column, 1)
                column.title.show()
                column.show()  # a page the tabs had hidden
            self._columns_stack.setCurrentWidget(self._row_page)

    def _update_controls(self) -> None:
        running = self.running
        self.run_button.setVisible(not running)
        self.stop_button.setVisible(running)
        self.run_button.setEnabled(self._model_loaded and not self._engine_busy)
        self.run_button.setToolTip(
            f"Run all three efforts as one batch ({self.prompt.send_key_text()})"
            if self._model_loaded
            else "Load a model first"
        )
        self.export_button.setEnabled(self.record is not None and not running)
        self.include_context.setEnabled(not running)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class _ComparisonView(ChatListener):
    """Draws one comparison session's answers into the view's columns, one per effort."""

    def __init__(self, view: CompareView, session: ChatSession) -> None:
        self.view = view
        self.session = session

    def busy_changed(self, running: bool) -> None:
        if running:
            self.view._update_controls()
            self.view.busy_changed.emit(True)
        else:
            self.view._on_ended()

    def reasoning_added(self, answer: LiveAnswer, text: str) -> None:
        self.view.columns[answer.index].append_reasoning(text)

    def tool_call_added(self, answer: LiveAnswer, text: str, recipient: str) -> None:
        self.view.columns[answer.index].append_reasoning(text, recipient)

    def answer_added(self, answer: LiveAnswer, text: str) -> None:
        self.view.columns[answer.index].append_answer(text, answer.first_answer_seconds)

    def request_failed(self, error: str) -> None:
        for column in self.view.columns:
            column.show_note(error, error=True)
        self.view.summary.setText(f"The comparison could not run: {error}")

    def answer_finished(self, answer: LiveAnswer) -> None:
        column = self.view.columns[answer.index]
        assert answer.stats is not None and answer.done is not None
        column.finish(
            answer.stats, first_answer_seconds=answer.first_answer_seconds, total_seconds=answer.total_seconds
        )
        if answer.done.error:
            column.show_note(answer.done.error, error=True)

    def answer_saved(self, answer: LiveAnswer, record: Message) -> None:
        self.view.saved.emit(record.chat_id)

    def chat_saved(self, chat_id: int) -> None:
        self.view.saved.emit(chat_id)

    def history_failed(self, what: str, error: HistoryError) -> None:
        self.view._history_failed(what, error)

    def run_finished(self, answers: tuple[LiveAnswer, ...]) -> None:
        self.view._on_finished(answers)
