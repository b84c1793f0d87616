"""AnswerSaver: a streaming answer's saved copy, over a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_oss_desktop.app.chat.answer_saver import AnswerSaver
from gpt_oss_desktop.app.history import ChatStore


class StepClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def test_progress_is_saved_every_interval_then_finished(store: ChatStore) -> None:
    chat = store.create_chat()
    store.add_message(chat.id, "user", "Tell me a story.")
    clock = StepClock()
    saver = AnswerSaver(store, chat.id, 1, "low", interval=2.0, clock=clock)
    saver.add_reasoning("A dragon, ")
    assert saver.save_progress() is None  # too soon: nothing written
    assert len(store.get_chat(chat.id).messages) == 1
    clock.now += 2.0
    saver.add_answer("Once")
    first = saver.save_progress()
    assert first is not None and (first.position, first.text, first.analysis, first.complete) == (
        1,
        "Once",
        "A dragon, ",
        False,
    )
    clock.now += 5.0
    assert saver.save_progress() is None  # nothing new since the last save
    saver.add_answer(" upon")
    clock.now += 2.0
    assert saver.save_progress() is not None
    final = saver.finish({"finish_reason": "stop", "final_tokens": 2})
    assert final is not None and final.id == first.id
    saved = store.get_chat(chat.id).messages[-1]
    assert (saved.text, saved.effort, saved.complete, saved.stats["final_tokens"]) == ("Once upon", "low", True, 2)


def test_forced_save_writes_a_row_before_any_text(store: ChatStore) -> None:
    chat = store.create_chat()
    store.add_message(chat.id, "user", "Hi")
    saver = AnswerSaver(store, chat.id, 1, "high")
    saved = saver.save_progress(force=True)
    assert saved is not None and (saved.text, saved.complete, saved.effort) == ("", False, "high")


def test_without_a_store_or_chat_nothing_is_written(store: ChatStore) -> None:
    for saver in (AnswerSaver(None, 1, 1, "low", interval=0.0), AnswerSaver(store, None, 1, "low", interval=0.0)):
        saver.add_answer("kept in memory")
        assert saver.save_progress(force=True) is None and saver.finish({}) is None
        assert saver.answer == "kept in memory"
    assert store.list_chats() == []
