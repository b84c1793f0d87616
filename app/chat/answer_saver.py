"""Writes one streaming answer into its saved chat while it arrives, so that a stop, a chat switch or a crash keeps
what was received (no Qt here).

The answer's row is written with ``complete=False`` at the first progress save and rewritten every few seconds while
the answer streams; the last write adds the statistics and ``complete=True``. After a crash the row holds the last
saved prefix, still marked incomplete. Each write is one store transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from gpt_oss_desktop.app.chat.tool_calls import ToolCallRecord
from gpt_oss_desktop.app.history import ChatStore, Message

# Progress saves are throttled to one per interval: a commit costs an fsync, and losing a couple of seconds of a
# streaming answer to a crash is acceptable.
PROGRESS_INTERVAL_S: Final = 2.0


class AnswerSaver:
    """The saved copy of one answer at ``position`` of chat ``chat_id``.

    Without a store or a chat (history off, or the question could not be saved) it only collects the text, and
    every save does nothing. Saves raise :class:`~app.history.HistoryError`; the caller reports them and the answer
    goes on.

    Args:
        store: the history, or None.
        chat_id: the chat the answer belongs to (kept even when the window moves on to another chat).
        position: the answer's message position (the question's position + 1).
        effort: the reasoning effort it is generated at ("low", "medium", "high").
        interval: seconds between progress saves.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        store: ChatStore | None,
        chat_id: int | None,
        position: int,
        effort: str,
        *,
        interval: float = PROGRESS_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.chat_id = chat_id
        self.position = position
        self.effort = effort
        self._interval = interval
        self._clock = clock
        self._reasoning: list[str] = []
        self._answer: list[str] = []
        # The answer's tool calls (the chat session fills this list as its loop runs; saved with each write).
        self.tool_calls: list[ToolCallRecord] = []
        self._message_id: int | None = None
        self._dirty = False
        self._last_save = clock()

    @property
    def enabled(self) -> bool:
        return self.store is not None and self.chat_id is not None

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning)

    @property
    def answer(self) -> str:
        return "".join(self._answer)

    @property
    def message_id(self) -> int | None:
        """The saved row, once one was written."""
        return self._message_id

    def adopt(self, chat_id: int, message_id: int) -> None:
        """Write into an existing row of ``chat_id`` from now on (a comparison's column, created empty with the
        comparison once the engine accepted it)."""
        self.chat_id = chat_id
        self._message_id = message_id

    def add_reasoning(self, text: str) -> None:
        self._reasoning.append(text)
        self._dirty = True

    def add_answer(self, text: str) -> None:
        self._answer.append(text)
        self._dirty = True

    def save_progress(self, *, force: bool = False) -> Message | None:
        """Write what has arrived so far, marked incomplete: when the interval has passed since the last save and
        something new arrived, or at once with ``force`` (even before the first token, so the answer has a row)."""
        if not self.enabled:
            return None
        if not force and (not self._dirty or self._clock() - self._last_save < self._interval):
            return None
        return self._write(complete=False, stats=None)

    def finish(self, stats: Mapping[str, Any]) -> Message | None:
        """The answer ended (finished, stopped or failed): its full text, reasoning and statistics, complete."""
        if not self.enabled:
            return None
        return self._write(complete=True, stats=stats)

    def _write(self, *, complete: bool, stats: Mapping[str, Any] | None) -> Message:
        assert self.store is not None and self.chat_id is not None
        # Only an answer that called tools says so (calls are never taken back within one answer).
        calls = [call.to_record() for call in self.tool_calls] if self.tool_calls else None
        if self._message_id is None:
            message = self.store.add_message(
                self.chat_id,
                "assistant",
                self.answer,
                analysis=self.reasoning,
                effort=self.effort,
                stats=stats,
                complete=complete,
                position=self.position,
                tool_calls=calls,
            )
            self._message_id = message.id
        else:
            message = self.store.update_message(
                self._message_id,
                text=self.answer,
                analysis=self.reasoning,
                stats=stats,
                complete=complete,
                tool_calls=calls,
            )
        self._dirty = False
        self._last_save = self._clock()
        return message
