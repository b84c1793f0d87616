"""Nothing a user typed or received is lost: editing the last message, Esc, drafts across chat switches, and answers
that are still streaming when the user switches chats or starts a new one.

The window runs over the real engine thread (ScriptedModel double for fixed token streams) and a real SQLite file;
every check of "what is saved" reads the file back, through the store and through a separate raw connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage, UserBubble
from gpt_oss_desktop.app.chat.stats import readable
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.scripted_model import ScriptedModel, harmony_reply
from gpt_oss_desktop.engine.vocab import get_encoding
from tests.app.conftest import load, next_emission, scripted_engine, until

# A long, slow answer: it is still streaming when the test switches away (0.01 s per token, ~800 tokens).
SLOW_THOUGHT = "thinking hard " * 5
SLOW_ANSWER = "word " * 800


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ChatStore]:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def bubbles(window: MainWindow) -> list[str]:
    return [w.label.text() for w in window.chat.messages() if isinstance(w, UserBubble)]


def answers(window: MainWindow) -> list[AssistantMessage]:
    return [w for w in window.chat.messages() if isinstance(w, AssistantMessage)]


def saved(store: ChatStore, chat_id: int) -> list[tuple[int, str, str]]:
    return [(m.position, m.role, m.text) for m in store.get_chat(chat_id).messages]


def empty_chats(path: Path) -> list[int]:
    """Chats with no message, read by a connection of its own (what a restart would find)."""
    raw = sqlite3.connect(path)
    try:
        rows = raw.execute(
            "SELECT id FROM chats WHERE deleted_at IS NULL AND id NOT IN (SELECT chat_id FROM messages)"
        ).fetchall()
    finally:
        raw.close()
    return [int(r[0]) for r in rows]


async def answered(window: MainWindow, question: str) -> int:
    """Send ``question`` and wait for its answer; the id of the chat both are saved in."""
    await next_emission(window.generation_finished, lambda: window.send_message(question))
    assert window.chat_id is not None
    return window.chat_id


def start_long_answer(window: MainWindow) -> int:
    """Send "write a lot" (each test scripts a long, slow answer for it: still streaming on return); its chat's id."""
    window.send_message("write a lot")
    assert window.chat_id is not None
    return window.chat_id


async def two_turn_chat(window: MainWindow) -> int:
    await load(window)
    await answered(window, "first question")
    return await answered(window, "secnod question")


def test_edit_keeps_the_original_until_the_edit_is_sent(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, model = scripted_engine(harmony_reply("t1", "one"), harmony_reply("t2", "two"), harmony_reply("t3", "3"))
    window = make_window(backend, store)

    async def body() -> None:
        chat_id = await two_turn_chat(window)
        before = saved(store, chat_id)
        assert window.edit_last_message()
        # Nothing is gone yet: not from the screen, not from the file.
        assert saved(store, chat_id) == before
        assert bubbles(window) == ["first question", "secnod question"] and len(answers(window)) == 2
        assert window.composer.prompt.toPlainText() == "secnod question" and window.composer.editing
        window.composer.prompt.setPlainText("second question")
        await next_emission(window.generation_finished, window.composer.submit)
        assert not window.composer.editing
        assert bubbles(window) == ["first question", "second question"]
        assert saved(store, chat_id) == [
            (0, "user", "first question"),
            (1, "assistant", "one"),
            (2, "user", "second question"),
            (3, "assistant", "3"),
        ]
        prompt = get_encoding().decode(model.last_prompt)
        assert "second question" in prompt and "secnod" not in prompt

    run(body())


def test_escape_cancels_the_edit_and_restores_the_composer(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine(harmony_reply("t1", "one"), harmony_reply("t2", "two"))
    window = make_window(backend, store)

    async def body() -> None:
        chat_id = await two_turn_chat(window)
        before = saved(store, chat_id)
        window.composer.prompt.setPlainText("a half-written next question")
        window.edit_last_action.trigger()
        assert window.composer.prompt.toPlainText() == "secnod question"
        window.composer.prompt.setPlainText("changed my mind")
        window.activateWindow()
        window.composer.prompt.setFocus()
        QTest.keyClick(window.composer.prompt, Qt.Key.Key_Escape)
        assert window.composer.prompt.toPlainText() == "a half-written next question"
        assert saved(store, chat_id) == before
        assert bubbles(window) == ["first question", "secnod question"] and len(answers(window)) == 2
        assert not answers(window)[-1].regenerate_button.isHidden()
        assert not window.composer.editing

    run(body())


def test_edit_draft_survives_a_chat_switch_and_no_empty_chat_is_left(
    run: Any, make_window: Any, store: ChatStore
) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "a"), harmony_reply("t", "b"), harmony_reply("t", "c"))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        other = await answered(window, "other chat")
        window.new_chat()
        edited = await answered(window, "only question")
        assert window.edit_last_message()
        window.composer.prompt.setPlainText("only question, reworded")
        # Away and back, by the sidebar's way (open_chat) and by New chat.
        assert window.open_chat(other)
        assert empty_chats(store.path) == []
        assert window.composer.prompt.toPlainText() == ""
        window.new_chat()
        assert empty_chats(store.path) == []
        assert window.open_chat(edited)
        assert window.composer.prompt.toPlainText() == "only question, reworded"
        assert bubbles(window) == ["only question"] and saved(store, edited)[0][2] == "only question"
        assert window.composer.editing
        await next_emission(window.generation_finished, window.composer.submit)
        assert saved(store, edited) == [(0, "user", "only question, reworded"), (1, "assistant", "c")]
        assert empty_chats(store.path) == []

    run(body())


def test_unsent_text_stays_with_its_chat(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        saved_chat = await answered(window, "saved chat")
        window.composer.prompt.setPlainText("a follow-up, not sent yet")
        window.new_chat()
        assert window.composer.prompt.toPlainText() == ""
        window.composer.prompt.setPlainText("an idea for a new chat")
        assert window.open_chat(saved_chat)
        assert window.composer.prompt.toPlainText() == "a follow-up, not sent yet"
        window.new_chat()
        assert window.composer.prompt.toPlainText() == "an idea for a new chat"
        assert [c.id for c in store.list_chats()] == [saved_chat]  # a draft is not a chat

    run(body())


async def wait_for_saved_stop(store: ChatStore, chat_id: int) -> None:
    """The stopped answer is written by its own stream's end (within a token of the switch)."""

    def stopped() -> bool:
        last = store.get_chat(chat_id).messages[-1]
        return last.role == "assistant" and last.complete and last.stats.get("finish_reason") == "cancelled"

    await until(stopped)


def check_stopped_answer_on_return(window: MainWindow, store: ChatStore, chat_id: int) -> None:
    record = store.get_chat(chat_id).messages[-1]
    assert record.role == "assistant" and record.effort == "medium"
    assert record.text.startswith("word word") and len(record.text) < len(SLOW_ANSWER)
    assert record.analysis == SLOW_THOUGHT
    assert record.stats["final_tokens"] > 0 and record.stats["reasoning_tokens"] > 0
    assert window.open_chat(chat_id)
    assert bubbles(window) == ["write a lot"]
    (shown,) = answers(window)
    assert shown.answer_text == record.text and shown.reasoning.text() == SLOW_THOUGHT
    assert "stopped" in readable(shown.stats.text())
    assert not shown.actions_row.isHidden() and not shown.regenerate_button.isHidden()


def test_switching_chats_mid_answer_keeps_the_answer(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine(
        harmony_reply("t", "short"),
        harmony_reply(SLOW_THOUGHT, SLOW_ANSWER),
        harmony_reply("t", "regenerated"),
        token_seconds=0.01,
    )
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        other = await answered(window, "hi")
        window.new_chat()
        streaming = start_long_answer(window)
        await until(lambda: window._current is not None and len(window._current.answer_text) > 20)
        assert window.open_chat(other)
        assert bubbles(window) == ["hi"] and not window.busy
        await wait_for_saved_stop(store, streaming)
        check_stopped_answer_on_return(window, store, streaming)
        # Regenerate replaces it, as for any last answer (at another effort: the same prompt would replay the
        # scripted stream the engine's prefill cache already holds).
        await next_emission(
            window.generation_finished, answers(window)[0].regenerate_actions[ReasoningEffort.HIGH].trigger
        )
        assert saved(store, streaming)[-1] == (1, "assistant", "regenerated")

    run(body())


def test_new_chat_mid_answer_keeps_the_answer(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine(
        harmony_reply(SLOW_THOUGHT, SLOW_ANSWER), harmony_reply("t", "fresh"), token_seconds=0.01
    )
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        streaming = start_long_answer(window)
        await until(lambda: window._current is not None and len(window._current.answer_text) > 20)
        window.new_chat_action.trigger()
        assert window.chat.messages() == [] and not window.busy and window.chat_id is None
        # The new chat is usable at once: its question queues behind the stopping answer.
        await next_emission(window.generation_finished, lambda: window.send_message("next"))
        assert answers(window)[0].answer_text == "fresh"
        await wait_for_saved_stop(store, streaming)
        check_stopped_answer_on_return(window, store, streaming)

    run(body())


def test_returning_before_the_stopped_answer_ended_shows_it_once_it_ends(
    run: Any, make_window: Any, store: ChatStore
) -> None:
    # The engine is held inside one decode step, so the stopped answer cannot end until the test releases it.
    release = threading.Event()
    model = ScriptedModel([harmony_reply(SLOW_THOUGHT, SLOW_ANSWER)], hold_after=40, release=release)
    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=4096)
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        streaming = start_long_answer(window)
        await until(lambda: model.steps >= 40 and window._current is not None and window._current.answer_text != "")
        window.new_chat()
        # What had arrived is saved at once, marked incomplete: coming back shows it.
        assert window.open_chat(streaming)
        (partial,) = answers(window)
        assert partial.answer_text.startswith("word") and "interrupted" in readable(partial.stats.text())
        release.set()
        await until(lambda: "stopped" in readable(answers(window)[0].stats.text()))
        (final,) = answers(window)
        assert final.reasoning.text() == SLOW_THOUGHT and not final.regenerate_button.isHidden()
        record = store.get_chat(streaming).messages[-1]
        assert record.complete and record.text == final.answer_text

    try:
        run(body())
    finally:
        release.set()


def test_an_answer_cut_off_by_a_crash_reopens_marked_interrupted(run: Any, make_window: Any, store: ChatStore) -> None:
    chat = store.create_chat("crashed")
    store.add_message(chat.id, "user", "Tell me a story.")
    store.add_message(chat.id, "assistant", "Once upon", analysis="A dragon.", effort="high", complete=False)
    backend, _ = scripted_engine(harmony_reply("t", "a"))
    window = make_window(backend, store)
    assert window.open_chat(chat.id)
    (shown,) = answers(window)
    assert (shown.answer_text, shown.reasoning.text(), shown.effort) == ("Once upon", "A dragon.", ReasoningEffort.HIGH)
    assert "interrupted" in readable(shown.stats.text()) and not shown.regenerate_button.isHidden()


def test_closing_waits_for_an_answer_stopped_by_a_switch(
    run: Any, make_window: Any, store: ChatStore, qapp: QApplication
) -> None:
    release = threading.Event()
    model = ScriptedModel([harmony_reply(SLOW_THOUGHT, SLOW_ANSWER)], hold_after=40, release=release)
    backend = LocalEngine(loader=lambda _ref, _progress: model, max_context=4096)
    window = make_window(backend, store)
    # In the app, closing the last window ends the event loop; here the test's loop must outlive the window.
    qapp.setQuitOnLastWindowClosed(False)

    async def body() -> None:
        await load(window)
        streaming = start_long_answer(window)
        await until(lambda: model.steps >= 40 and window._current is not None and window._current.answer_text != "")
        window.new_chat()
        window.close()
        assert window.isVisible()  # the stopped answer has not ended yet: closing waits for it (within a grace)
        release.set()
        await until(lambda: not window.isVisible())
        record = store.get_chat(streaming).messages[-1]
        assert record.complete and record.stats["finish_reason"] == "cancelled" and record.text.startswith("word")

    try:
        run(body())
    finally:
        release.set()
        qapp.setQuitOnLastWindowClosed(True)
