"""Compare mode: one prompt answered at low, medium and high effort side by side, live, with what each effort cost.

The three requests go to the backend as one batch (:meth:`app.backend.ChatBackend.stream_compare`), so on the local
engine they share every read of the weights. Each column streams its reasoning and answer; when all three are done a
summary says whether the answers agree and how many times the tokens and time of low effort high effort took.

With a store, a comparison is saved as its own kind of history entry (``kind="comparison"``: the prompt, any context,
and one answer per column) as soon as the engine accepts it, and each column is written when it finishes. Any column
can be continued as a normal chat, and the comparison exported to Markdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app import kernel_preparation, stats
from gpt_oss_desktop.app.backend import ChatBackend, ChatRequest, RequestError
from gpt_oss_desktop.app.compare_column import CompareColumn
from gpt_oss_desktop.app.compare_summary import ColumnOutcome, ComparisonSummary, outcome_from_record, summarise
from gpt_oss_desktop.app.composer import PromptEdit
from gpt_oss_desktop.app.conversation import Conversation, Turn
from gpt_oss_desktop.app.history import Chat, ChatStore, HistoryError, Message, chat_to_markdown, title_from_prompt
from gpt_oss_desktop.app.history.models import check_effort, check_role, utc_now
from gpt_oss_desktop.app.kernel_preparation import KernelPreparation
from gpt_oss_desktop.engine.events import Delta, Done
from gpt_oss_desktop.engine.harmony import ChatMessage, ReasoningEffort
from gpt_oss_desktop.engine.private_files import write_private_text
from gpt_oss_desktop.engine.sampling import SamplingParams

logger = logging.getLogger(__name__)

EFFORTS: Final = tuple(ReasoningEffort)  # column order: low, medium, high
INCLUDE_CONTEXT_KEY: Final = "include_context"


def context_messages(turns: Sequence[Turn]) -> tuple[ChatMessage, ...]:
    """The chat so far as the engine sees it (the renderer drops earlier reasoning itself)."""
    out: list[ChatMessage] = []
    for turn in turns:
        out.append(ChatMessage.user(turn.user))
        if turn.reasoning:
            out.append(ChatMessage.analysis(turn.reasoning))
        if turn.answer:
            out.append(ChatMessage.final(turn.answer))
    return tuple(out)


def context_records(turns: Sequence[Turn]) -> list[Message]:
    """The same turns as history rows (positions 0, 1, ...), to be saved with the comparison."""
    now = utc_now()
    records: list[Message] = []

    def add(role: str, text: str, analysis: str = "", effort: str | None = None) -> None:
        records.append(
            Message(
                id=0,
                chat_id=0,
                position=len(records),
                column=0,
                role=check_role(role),
                text=text,
                analysis=analysis,
                effort=check_effort(effort),
                stats={},
                complete=True,
                created_at=now,
            )
        )

    for turn in turns:
        add("user", turn.user)
        if turn.answered:
            add("assistant", turn.answer, turn.reasoning, turn.effort.value if turn.effort else None)
    return records


def _sampling_record(params: SamplingParams) -> dict[str, Any]:
    return {"temperature": params.temperature, "top_p": params.top_p, "max_tokens": params.max_tokens}


class CompareView(QWidget):
    """The compare mode page of the main window.

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
        conversation: Conversation | None = None,
        sampling: Callable[[], SamplingParams] = SamplingParams,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.backend = backend
        self.store = store
        self.conversation = conversation
        self._sampling = sampling
        self._task: asyncio.Task[None] | None = None
        self._engine_busy = False
        self._model_loaded = backend.info is not None
        self.kernels: KernelPreparation | None = None  # set by the window: a first-run CPU kernel build to wait for
        # The comparison on screen: kept in memory (export and continue work without a store) and mirrored to the
        # store when there is one (chat_id set once it is saved).
        self.record: Chat | None = None
        self.chat_id: int | None = None
        self._answer_ids: list[int] = []  # store ids of the answer rows, per column
        self.summary_result: ComparisonSummary | None = None

        heading = QLabel("<b>Compare efforts</b> — one prompt, answered at low, medium and high effort at once", self)
        heading.setWordWrap(True)
        self.prompt = PromptEdit(self)
        self.prompt.setPlaceholderText("Ask once, see low, medium and high effort side by side…  (Ctrl+Enter)")
        self.prompt.setAccessibleName("Comparison prompt")
        self.prompt.submitted.connect(self.start)
        self.include_context = QCheckBox("Include the current chat", self)
        self.include_context.setAccessibleName("Include the current chat's context")
        self.include_context.setToolTip("Send the open chat's messages before the prompt, to all three efforts")
        self.run_button = QPushButton("Compare", self)
        self.run_button.setAccessibleName("Run the comparison")
        self.run_button.setToolTip("Run all three efforts as one batch (Ctrl+Enter)")
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
        side = QVBoxLayout()
        side.setSpacing(4)
        side.addWidget(self.include_context)
        side.addStretch(1)
        side.addWidget(self.export_button)
        side.addWidget(self.run_button)
        side.addWidget(self.stop_button)
        top = QHBoxLayout()
        top.addWidget(self.prompt, 1)
        top.addLayout(side)

        self._columns_row = QHBoxLayout()
        self._columns_row.setSpacing(8)
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

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 8)
        layout.setSpacing(8)
        layout.addWidget(heading)
        layout.addLayout(top)
        layout.addWidget(self.context_note)
        layout.addLayout(self._columns_row, 1)
        layout.addWidget(self.summary)
        self._new_columns()
        self._update_controls()

    # -- public API ---------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._task is not None

    def set_model_loaded(self, loaded: bool) -> None:
        self._model_loaded = loaded
        self._update_controls()

    def set_engine_busy(self, busy: bool) -> None:
        """Another job (a chat answer) holds the engine: no comparison may start until it ends."""
        self._engine_busy = busy
        self._update_controls()

    def start(self, text: str | None = None) -> asyncio.Task[None] | None:
        """Run the comparison for ``text`` (default: the prompt box). None if it cannot start now."""
        prompt = (self.prompt.toPlainText() if text is None else text).strip()
        if self.running or self._engine_busy or self.backend.info is None or not prompt:
            return None
        turns = list(self.conversation.turns) if self.conversation and self.include_context.isChecked() else []
        params = self._sampling()
        messages = (*context_messages(turns), ChatMessage.user(prompt))
        requests = [ChatRequest(messages=messages, effort=effort, params=params) for effort in EFFORTS]
        self._begin_record(prompt, turns, params)
        self.context_note.hide()
        self._new_columns()
        self.summary.setText("Running low, medium and high effort as one batch…")
        self._task = asyncio.ensure_future(self._run(requests))
        self._update_controls()
        self.busy_changed.emit(True)
        return self._task

    def stop(self) -> None:
        """Stop all three columns after their current token; what they have is kept."""
        if self.running:
            self.backend.cancel()

    def show_saved(self, chat: Chat) -> bool:
        """Show a saved comparison (numbers, reasoning, answers, summary). False while a comparison runs."""
        if self.running or chat.kind != "comparison":
            return False
        last = max((m.position for m in chat.messages), default=0)
        answers = sorted((m for m in chat.messages if m.position == last and m.role == "assistant"), key=_column)
        prompt = next((m.text for m in chat.messages if m.position == last - 1 and m.role == "user"), "")
        self.record, self.chat_id = chat, (chat.id or None)
        self._answer_ids = [m.id for m in answers]
        self.prompt.setPlainText(prompt)
        self.include_context.setChecked(bool(chat.meta.get(INCLUDE_CONTEXT_KEY)))
        self._show_context([m for m in chat.messages if m.position < last - 1])
        self._new_columns()
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
            column.reasoning.mark_not_sent()
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
        self.record, self.chat_id, self._answer_ids, self.summary_result = None, None, [], None
        self._new_columns()
        self.summary.clear()
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
        safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in self.record.title).strip() or "comparison"
        path, _ = QFileDialog.getSaveFileName(self, "Export comparison", safe + ".md", "Markdown (*.md)")
        if path:
            self.export_markdown(path)

    # -- running ------------------------------------------------------------------------------------------------

    async def _run(self, requests: list[ChatRequest]) -> None:
        info = self.backend.info
        await kernel_preparation.wait_before_answer(self.kernels, info.device if info else None)
        started = time.perf_counter()  # after any kernel build, as for a chat answer
        first_answer: list[float | None] = [None] * len(requests)
        dones: list[Done | None] = [None] * len(requests)
        outcomes: list[ColumnOutcome | None] = [None] * len(requests)
        try:
            async with contextlib.aclosing(self.backend.stream_compare(requests)) as events:
                async for index, event in events:
                    if self.chat_id is None:
                        self._save_new()  # the engine accepted the batch: it belongs in the history now
                    column = self.columns[index]
                    if isinstance(event, Done):
                        dones[index] = event
                        outcomes[index] = self._finish_column(index, event, started, first_answer[index])
                    elif _is_reasoning(event):
                        column.append_reasoning(event.text, event.recipient)
                    else:
                        # Final answers, user-visible commentary and unlabelled (salvaged) text all read as answer.
                        if first_answer[index] is None:
                            first_answer[index] = time.perf_counter() - started
                        column.append_answer(event.text, first_answer[index])
        except RequestError as exc:
            for column in self.columns:
                column.show_note(str(exc), error=True)
            self.summary.setText(f"The comparison could not run: {exc}")
        finally:
            if self._task is asyncio.current_task():
                self._task = None
                self._update_controls()
                self.busy_changed.emit(False)
        if all(o is not None for o in outcomes):
            self._show_summary([o for o in outcomes if o is not None], complete=True)
        self.finished.emit(tuple(dones))

    def _finish_column(self, index: int, done: Done, started: float, first_answer: float | None) -> ColumnOutcome:
        column = self.columns[index]
        total = time.perf_counter() - started
        answer_stats = stats.AnswerStats.from_done(done, total_seconds=total, thinking_seconds=first_answer)
        column.finish(answer_stats, first_answer_seconds=first_answer, total_seconds=total)
        if done.error:
            column.show_note(done.error, error=True)
        record = {
            **answer_stats.to_record(),
            "completion_tokens": done.completion_tokens,
            "first_answer_s": first_answer,
            "total_s": total,
        }
        self._save_column(index, column.answer_text, column.reasoning_text, record)
        return ColumnOutcome(EFFORTS[index].value, column.answer_text, done.completion_tokens, total)

    def _show_summary(self, outcomes: list[ColumnOutcome], *, complete: bool) -> None:
        if len(outcomes) < 2:
            self.summary.clear()
            return
        self.summary_result = summarise(outcomes)
        text = self.summary_result.text(outcomes[0].effort, outcomes[-1].effort)
        self.summary.setText(text if complete else f"{text} (interrupted)")

    # -- history ------------------------------------------------------------------------------------------------

    def _begin_record(self, prompt: str, turns: list[Turn], params: SamplingParams) -> None:
        context = context_records(turns)
        now = utc_now()
        position = len(context)
        messages = [*context, _row(position, 0, "user", prompt, None, complete=True)]
        messages += [_row(position + 1, column, "assistant", "", effort.value) for column, effort in enumerate(EFFORTS)]
        info = self.backend.info
        self.record = Chat(
            id=0,
            kind="comparison",
            title=title_from_prompt(prompt),
            created_at=now,
            updated_at=now,
            system_instructions="",
            developer_instructions="",
            model=info.name if info else "",
            sampling=_sampling_record(params),
            meta={INCLUDE_CONTEXT_KEY: bool(turns)},
            deleted_at=None,
            messages=tuple(messages),
        )
        self.chat_id = None
        self._answer_ids = []
        self.summary_result = None

    def _save_new(self) -> None:
        if self.store is None or self.record is None:
            return
        record = self.record
        context = [m for m in record.messages if m.position < record.messages[-1].position - 1]
        prompt = next(m.text for m in record.messages if m.role == "user" and m.position == len(context))
        try:
            saved = self.store.create_comparison(
                prompt,
                [effort.value for effort in EFFORTS],
                context=context,
                title=record.title,
                model=record.model,
                sampling=record.sampling,
                meta=record.meta,
            )
        except HistoryError as exc:
            self._history_failed("Could not save the comparison", exc)
            return
        self.chat_id = saved.id
        last = max(m.position for m in saved.messages)
        self._answer_ids = [m.id for m in sorted(saved.messages, key=_column) if m.position == last]
        self.saved.emit(saved.id)

    def _save_column(self, index: int, answer: str, reasoning: str, record: dict[str, Any]) -> None:
        if self.record is not None:
            messages = tuple(
                replace(m, text=answer, analysis=reasoning, stats=record, complete=True)
                if m.role == "assistant" and m.column == index and m.position == self.record.messages[-1].position
                else m
                for m in self.record.messages
            )
            self.record = replace(self.record, messages=messages)
        if self.store is None or self.chat_id is None or index >= len(self._answer_ids):
            return
        try:
            self.store.update_message(
                self._answer_ids[index], text=answer, analysis=reasoning, stats=record, complete=True
            )
        except HistoryError as exc:
            self._history_failed("Could not save the comparison", exc)
            return
        self.saved.emit(self.chat_id)

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

    def _new_columns(self) -> None:
        for column in self.columns:
            self._columns_row.removeWidget(column)
            column.hide()
            column.deleteLater()
        self.columns = []
        for index, effort in enumerate(EFFORTS):
            column = CompareColumn(effort, self)
            column.continue_requested.connect(lambda i=index: self._continue(i))
            self._columns_row.addWidget(column, 1)
            self.columns.append(column)

    def _update_controls(self) -> None:
        running = self.running
        self.run_button.setVisible(not running)
        self.stop_button.setVisible(running)
        self.run_button.setEnabled(self._model_loaded and not self._engine_busy)
        self.run_button.setToolTip(
            "Run all three efforts as one batch (Ctrl+Enter)" if self._model_loaded else "Load a model first"
        )
        self.export_button.setEnabled(self.record is not None and not running)
        self.include_context.setEnabled(not running)


def _is_reasoning(event: Delta) -> bool:
    return event.is_reasoning or event.is_tool_call


def _column(message: Message) -> int:
    return message.column


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _row(position: int, column: int, role: str, text: str, effort: str | None, *, complete: bool = False) -> Message:
    return Message(
        id=0,
        chat_id=0,
        position=position,
        column=column,
        role=check_role(role),
        text=text,
        analysis="",
        effort=check_effort(effort),
        stats={},
        complete=complete,
        created_at=utc_now(),
    )
