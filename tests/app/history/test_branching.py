"""Branching a chat into a new one (up to an answer, or all of it) in a real SQLite history, and from the window's
answer cards and the sidebar (offscreen)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.history import Attachment, ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.scripted_model import harmony_reply
from tests.app.conftest import load, next_emission, scripted_engine

from .test_store import STATS

CALL = {"recipient": "functions.get_current_time", "arguments": "{}", "status": "ok", "output": "12:00"}


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with ChatStore(tmp_path / "history.sqlite3") as opened:
        yield opened


def two_turns(store: ChatStore) -> int:
    chat = store.create_chat("Tides", developer_instructions="Be brief.", model="gpt-oss-20b")
    store.add_message(chat.id, "user", "Why tides?", attachments=[Attachment("notes.md", "moon\n", 5, 2)])
    store.add_message(
        chat.id, "assistant", "The Moon.", analysis="Gravity.", effort="high", stats=STATS, tool_calls=[CALL]
    )
    store.add_message(chat.id, "user", "How often?")
    store.add_message(chat.id, "assistant", "Twice a day.", effort="low")
    return chat.id


def test_a_branch_copies_up_to_an_answer_and_a_duplicate_copies_all(store: ChatStore) -> None:
    chat_id = two_turns(store)
    branch = store.branch_chat(chat_id, 1)
    assert branch.title == "Tides (branch)" and branch.kind == "chat" and branch.id != chat_id
    assert branch.developer_instructions == "Be brief." and branch.model == "gpt-oss-20b"
    assert branch.meta == {"branched_from": {"chat_id": chat_id, "through": 1}}
    first, answer = branch.thread()
    assert (first.text, first.attachments[0].name) == ("Why tides?", "notes.md")
    assert (answer.text, answer.analysis, answer.effort, answer.tool_calls[0]["output"]) == (
        "The Moon.", "Gravity.", "high", "12:00"
    )  # fmt: skip
    duplicate = store.branch_chat(chat_id, title="Tides again")
    assert duplicate.title == "Tides again" and [m.text for m in duplicate.thread()][-1] == "Twice a day."
    assert len(store.get_chat(chat_id).thread()) == 4  # the original is untouched
    comparison = store.create_comparison("Is 91 prime?", model="m")
    with pytest.raises(ValueError, match="continued from one of its columns"):
        store.branch_chat(comparison.id)
    with pytest.raises(ValueError, match="no messages up to position -1"):
        store.branch_chat(chat_id, -1)


def test_branch_from_an_answer_card_and_duplicate_from_the_sidebar(
    run: Any, make_window: Any, store: ChatStore
) -> None:
    window: MainWindow = make_window(
        scripted_engine(harmony_reply("t", "First."), harmony_reply("t", "Second."))[0], store
    )

    async def body() -> None:
        await load(window)
        await next_emission(window.generation_finished, lambda: window.send_message("One?"))
        await next_emission(window.generation_finished, lambda: window.send_message("Two?"))

    run(body())
    original = window.chat_id
    assert original is not None
    answers = [w for w in window.chat.messages() if w.__class__.__name__ == "AssistantMessage"]
    assert len(answers) == 2 and window._last_assistant() is answers[1]
    answers[0].branch_button.click()  # branch from the first answer
    assert window.chat_id not in (None, original)
    branched = store.get_chat(window.chat_id)
    assert [m.text for m in branched.thread()] == ["One?", "First."]
    assert "the original chat is unchanged" in window.statusBar().currentMessage()
    assert window.sidebar is not None and branched.id in window.sidebar.chat_ids()
    assert len(store.get_chat(original).thread()) == 4
    window.sidebar.duplicate_chat(original)
    copy = store.get_chat(window.chat_id)
    assert copy.id not in (original, branched.id) and [m.text for m in copy.thread()][-1] == "Second."
    menu = window.sidebar.chat_menu(window.sidebar.item_for(original))
    assert [a.text() for a in menu.actions() if a.text()] == ["Rename", "Pin", "Duplicate", "Delete"]


def test_branching_an_unsaved_chat_says_why(make_window: Any) -> None:
    window: MainWindow = make_window(scripted_engine(harmony_reply("t", "a"))[0], None)
    assert window.branch_chat() is False
    assert window.statusBar().currentMessage() == "This chat is not saved, so there is nothing to branch from."
