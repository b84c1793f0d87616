"""History in the window: real SQLite stores in tmp_path, the scripted test double behind the real engine thread."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from gpt_oss_desktop.app.chat.chat_view import AssistantMessage, UserBubble
from gpt_oss_desktop.app.chat.stats import readable
from gpt_oss_desktop.app.history import REASONING_LABEL, ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine
from tests.helpers.history_files import write_damaged_history
from tests.helpers.stall_meter import StallMeter

THOUGHT = "The user asks about capybaras. They are large rodents."
ANSWER = "Capybaras are the largest living rodents."


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.sqlite3"


@pytest.fixture
def store(db: Path) -> Iterator[ChatStore]:
    with ChatStore(db) as opened:
        yield opened


async def send(window: MainWindow, text: str) -> Any:
    return await next_emission(window.generation_finished, lambda: window.send_message(text))


def load_and_ask(run: Any, window: MainWindow, question: str) -> None:
    """Load the scripted model and wait for its answer to ``question``."""

    async def body() -> None:
        await load(window)
        await send(window, question)

    run(body())


def window_with_an_answer(run: Any, make_window: Any, store: ChatStore, question: str) -> MainWindow:
    """A window over ``store`` whose current chat holds ``question`` and its (scripted) answer, ANSWER."""
    window = make_window(scripted_engine(harmony_reply(THOUGHT, ANSWER))[0], store)
    load_and_ask(run, window, question)
    return window


def sidebar(window: MainWindow) -> Any:
    assert window.sidebar is not None
    return window.sidebar


def test_send_saves_the_chat_and_lists_it(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine(harmony_reply(THOUGHT, ANSWER), harmony_reply("More.", "They live in groups."))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        await send(window, "Tell me about capybaras please")
        assert window.chat_id is not None
        assert sidebar(window).chat_ids() == [window.chat_id]
        item = sidebar(window).item_for(window.chat_id)
        assert item.text() == "Tell me about capybaras please" and item.isSelected()
        await send(window, "Where do they live?")

    run(body())
    chat = store.get_chat(window.chat_id)
    assert [(m.position, m.role) for m in chat.messages] == [(0, "user"), (1, "assistant"), (2, "user"),
                                                             (3, "assistant")]  # fmt: skip
    answer = chat.messages[1]
    assert (answer.text, answer.analysis, answer.effort) == (ANSWER, THOUGHT, "medium")
    assert answer.stats["final_tokens"] > 0 and answer.stats["finish_reason"] == "stop"
    assert chat.model  # the loaded model's name


def test_regenerate_replaces_the_saved_answer(run: Any, make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine(harmony_reply(THOUGHT, ANSWER), harmony_reply("Again.", "Rodents, big ones."))
    window = make_window(backend, store)

    async def body() -> None:
        await load(window)
        await send(window, "Capybaras?")
        # At another effort: the prompt differs, so the test double replays its next script (a cache hit would not).
        await next_emission(window.generation_finished, lambda: window.regenerate(ReasoningEffort.HIGH))

    run(body())
    messages = store.get_chat(window.chat_id).messages
    assert [(m.role, m.text) for m in messages] == [("user", "Capybaras?"), ("assistant", "Rodents, big ones.")]
    assert messages[1].effort == "high"


def test_history_survives_a_restart(run: Any, make_window: Any, db: Path, qtbot: Any) -> None:
    backend, _ = scripted_engine(harmony_reply(THOUGHT, ANSWER), harmony_reply("Second.", "Second answer."))
    first_store = ChatStore(db)
    window = make_window(backend, first_store)
    load_and_ask(run, window, "Capybaras?")
    chat_id = window.chat_id
    window.close()
    first_store.close()

    with ChatStore(db) as reopened:
        second = make_window(backend, reopened)
        assert sidebar(second).chat_ids() == [chat_id]
        assert second.chat.messages() == []  # a restart opens on a new chat, the old one one click away
        sidebar(second).list.setCurrentItem(sidebar(second).item_for(chat_id))  # as a click or arrow key would
        assert second.chat_id == chat_id
        widgets = second.chat.messages()
        assert [type(w) for w in widgets] == [UserBubble, AssistantMessage]
        message = widgets[1]
        assert isinstance(message, AssistantMessage)
        assert message.answer.text() == ANSWER and message.reasoning.text() == THOUGHT
        # Prior reasoning: shown, but marked as never re-sent (widgets added to a shown layout appear a tick later).
        qtbot.waitUntil(lambda: message.reasoning.not_sent.isVisible(), timeout=2000)
        assert "answer tokens" in readable(message.stats.text())
        assert second.conversation.turns[0].answer == ANSWER

        # The reopened chat continues, and the new turn lands in the same saved chat.
        async def continue_chat() -> None:
            await load(second)
            await send(second, "And then?")

        run(continue_chat())
        assert [m.text for m in reopened.get_chat(chat_id).messages][-1] == "Second answer."
        second.close()


def test_rename_from_the_sidebar(run: Any, make_window: Any, store: ChatStore) -> None:
    window = window_with_an_answer(run, make_window, store, "Capybaras?")
    bar = sidebar(window)
    item = bar.item_for(window.chat_id)
    with_signal = next_emission(bar.chat_renamed, lambda: item.setText("Rodent facts"))  # what inline editing does
    run(with_signal)
    assert store.get_chat(window.chat_id).title == "Rodent facts"
    assert bar.item_for(window.chat_id).text() == "Rodent facts"
    assert not bar.rename_chat(window.chat_id, "   ")  # blank titles are refused
    assert store.get_chat(window.chat_id).title == "Rodent facts"


def test_delete_and_undo(run: Any, make_window: Any, store: ChatStore) -> None:
    older = store.create_chat("Older chat")
    store.add_message(older.id, "user", "hello")
    window = window_with_an_answer(run, make_window, store, "Capybaras?")
    chat_id = window.chat_id
    bar = sidebar(window)
    assert bar.chat_ids() == [chat_id, older.id]  # most recent first
    bar.list.setFocus()
    bar.list.setCurrentItem(bar.item_for(chat_id))
    QTest.keyClick(bar.list, Qt.Key.Key_Delete)
    if bar.chat_ids() != [older.id]:
        bar.delete_chat(chat_id)  # offscreen platforms may not route the shortcut: same operation
    assert bar.chat_ids() == [older.id]
    assert window.chat_id is None and window.chat.messages() == []  # the open chat went with it
    assert store.get_chat(chat_id).deleted_at is not None  # soft: still on disk
    assert bar.undo_banner.isVisible() and bar.undo_label.text() == "Chat deleted"
    bar.undo_button.click()
    assert not bar.undo_banner.isVisible()
    assert bar.chat_ids() == [chat_id, older.id]
    assert store.get_chat(chat_id).deleted_at is None


def test_search_finds_chats_by_content(run: Any, make_window: Any, store: ChatStore, qtbot: Any) -> None:
    other = store.create_chat("Unrelated")
    store.add_message(other.id, "user", "How do I bake bread?")
    window = window_with_an_answer(run, make_window, store, "Tell me something")
    bar = sidebar(window)
    # Search runs on a worker thread, so each query's hits arrive a little later.
    with qtbot.waitSignal(bar.search_finished, timeout=10_000):
        QTest.keyClicks(bar.search, "largest rodents")  # words of the answer, not of the title
    assert bar.chat_ids() == [window.chat_id]
    assert "rodents" in bar.item_for(window.chat_id).toolTip()  # the snippet shows why it matched
    bar.search.clear()
    with qtbot.waitSignal(bar.search_finished, timeout=10_000):
        bar.search.setText("bread")
    assert bar.chat_ids() == [other.id]
    with qtbot.waitSignal(bar.search_finished, timeout=10_000):
        bar.search.setText("unrelated")  # titles too
    assert bar.chat_ids() == [other.id]
    bar.search.clear()
    assert set(bar.chat_ids()) == {window.chat_id, other.id}


def test_search_finds_chats_by_their_tool_results(make_window: Any, store: ChatStore, qtbot: Any) -> None:
    other = store.create_chat("Unrelated")
    store.add_message(other.id, "assistant", "Rain, then snow.", effort="low")
    chat = store.create_chat("Packing")
    store.add_message(chat.id, "user", "What should I pack for Oslo?")
    weather = {"recipient": "functions.get_weather", "arguments": '{"city": "Oslo"}', "output": "Sleet, 1 °C"}
    store.add_message(chat.id, "assistant", "A warm coat.", effort="low", tool_calls=[weather])
    window = make_window(scripted_engine()[0], store)
    bar = sidebar(window)
    with qtbot.waitSignal(bar.search_finished, timeout=10_000):
        QTest.keyClicks(bar.search, "sleet")  # only in the weather tool's result
    assert bar.chat_ids() == [chat.id]
    assert "<b>Sleet</b>, 1 °C" in bar.item_for(chat.id).toolTip()  # the snippet shows the result that matched


def test_exported_files_parse(run: Any, make_window: Any, store: ChatStore, tmp_path: Path) -> None:
    backend, _ = scripted_engine(harmony_reply(THOUGHT, ANSWER))
    window = make_window(backend, store)
    assert not window.export_json_action.isEnabled()  # nothing saved yet
    load_and_ask(run, window, "Capybaras?")
    assert window.export_json_action.isEnabled() and window.export_markdown_action.isEnabled()
    assert window.export_chat(tmp_path / "chat.json", "json")
    assert window.export_chat(tmp_path / "chat.md", "markdown")
    data = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))
    assert ANSWER in json.dumps(data) and THOUGHT in json.dumps(data)
    markdown = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert ANSWER in markdown and "Capybaras?" in markdown and REASONING_LABEL in markdown


def test_without_a_store_nothing_is_kept(run: Any, make_window: Any) -> None:
    backend, _ = scripted_engine(harmony_reply(THOUGHT, ANSWER))
    window = make_window(backend)
    assert window.sidebar is None
    load_and_ask(run, window, "Capybaras?")
    assert window.chat_id is None and not window.export_chat("unused.json", "json")


def test_chats_of_a_damaged_file_open_or_say_why(make_window: Any, db: Path) -> None:
    chat_ids = write_damaged_history(db)
    backend, _ = scripted_engine()
    with ChatStore(db) as damaged:
        window = make_window(backend, damaged)
        failed = 0
        for chat_id in chat_ids:
            window.statusBar().clearMessage()
            if window.open_chat(chat_id):  # a raw sqlite3 (or any other) exception fails the test here
                assert window.chat_id == chat_id
                continue
            failed += 1
            assert window.statusBar().currentMessage().startswith("Could not open the chat: ")
        assert 3 <= failed < len(chat_ids) - 20  # the damage is real, and it is contained
        window.close()


def test_a_chat_with_a_ten_megabyte_answer_opens_without_freezing_the_window(
    make_window: Any, store: ChatStore, qtbot: Any
) -> None:
    # A runaway answer and reasoning, as a model stuck in a loop until max tokens leaves them (Markdown in every
    # line, so that parsing costs what real answers cost: on the GUI thread this froze the window for about 25 s).
    answer = ("Four. *Really* four; see `2 + 2` and [why](https://example.org).\n\n" * 160_000)[:10_000_000]
    reasoning = "I should check the sum again.\n" * 340_000
    chat = store.create_chat("Runaway")
    store.add_message(chat.id, "user", "What is 2 + 2?")
    store.add_message(chat.id, "assistant", answer, analysis=reasoning, effort="medium")
    backend, _ = scripted_engine()
    window = make_window(backend, store)
    meter = StallMeter()
    meter.start()
    QTimer.singleShot(0, lambda: window.open_chat(chat.id))  # from the event loop, as a click in the sidebar
    try:
        qtbot.waitUntil(lambda: window.chat_id == chat.id and len(window.chat.messages()) == 2, timeout=10_000)
        message = window.chat.messages()[1]
        assert isinstance(message, AssistantMessage)
        qtbot.waitUntil(lambda: not message.answer.pending, timeout=60_000)
    finally:
        meter.stop()
    # Qt's own setHtml and layout of the part that is shown still run on the GUI thread (~0.1-0.3 s here).
    assert meter.longest < 1.0, f"the event loop stalled for {meter.longest * 1000:.0f} ms"
    shown = message.answer.toPlainText()
    assert shown.startswith("Four. Really four; see 2 + 2 and why.") and "answer are not shown here" in shown
    assert message.answer_text == answer and message.answer.text() == answer  # Copy gives all of it
    assert message.reasoning.text() == reasoning and message.reasoning.hidden_chars > 0
    assert "reasoning is not shown here" in message.reasoning.body.toPlainText()


def test_opening_and_renaming_a_chat_does_not_reorder(make_window: Any, store: ChatStore) -> None:
    backend, _ = scripted_engine()
    older = store.create_chat("Older")
    store.add_message(older.id, "user", "hello")
    newer = store.create_chat("Newer")
    store.add_message(newer.id, "user", "hi")
    window = make_window(backend, store)
    bar = sidebar(window)
    assert bar.chat_ids() == [newer.id, older.id]
    bar.list.setCurrentItem(bar.item_for(older.id))  # opening re-saves the chat's instructions
    assert window.chat_id == older.id
    assert bar.rename_chat(older.id, "Older, renamed")
    assert bar.chat_ids() == [newer.id, older.id]
