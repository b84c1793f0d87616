"""Versions of answers and questions through the real SQLite store: regenerating or editing keeps the old thread as a
version, versions nest with the conversation, and switching never loses or renumbers one."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.history.versions import Versions


def texts(store: ChatStore, chat_id: int) -> list[str]:
    return [m.text for m in store.get_chat(chat_id).messages]


def chat_with(store: ChatStore, *messages: str) -> int:
    chat = store.create_chat()
    for text in messages:
        store.add_message(chat.id, "user" if text.startswith("q") else "assistant", text)
    return chat.id


def test_a_regenerated_answer_keeps_the_old_one_as_a_version(store: ChatStore) -> None:
    chat_id = chat_with(store, "q1", "a1", "q2", "a2")
    assert store.versions(chat_id) == {}
    assert store.new_version_from(chat_id, 3) is None
    assert texts(store, chat_id) == ["q1", "a1", "q2"]
    # While the new answer is being written it is the newest version.
    assert store.versions(chat_id) == {3: Versions(3, 1, 2)}
    store.add_message(chat_id, "assistant", "a2 again", position=3)
    assert store.versions(chat_id) == {3: Versions(3, 1, 2)}
    store.new_version_from(chat_id, 3)
    store.add_message(chat_id, "assistant", "a2 third", position=3)
    assert store.versions(chat_id) == {3: Versions(3, 2, 3)}
    # Back to the first: the third is kept, and the numbering stays the same.
    chat = store.show_version(chat_id, 3, 0)
    assert [m.text for m in chat.messages] == ["q1", "a1", "q2", "a2"]
    assert store.versions(chat_id) == {3: Versions(3, 0, 3)}
    assert [m.text for m in store.version_messages(chat_id, 3, 2)] == ["a2 third"]
    assert [m.text for m in store.version_messages(chat_id, 3, 1)] == ["a2 again"]
    store.show_version(chat_id, 3, 2)
    assert texts(store, chat_id) == ["q1", "a1", "q2", "a2 third"]
    assert store.versions(chat_id) == {3: Versions(3, 2, 3)}


def test_an_edited_question_branches_and_takes_later_versions_along(store: ChatStore) -> None:
    chat_id = chat_with(store, "q1", "a1", "q2", "a2")
    store.new_version_from(chat_id, 3)
    store.add_message(chat_id, "assistant", "a2 again", position=3)  # versions at 3 in the first branch
    edited = store.new_version_from(chat_id, 0, role="user", text="q1 edited")
    assert edited is not None and (edited.position, edited.role) == (0, "user")
    assert texts(store, chat_id) == ["q1 edited"]
    # The answer versions belong to the old branch: this branch has none.
    assert store.versions(chat_id) == {0: Versions(0, 1, 2)}
    store.add_message(chat_id, "assistant", "a1 for the edit", position=1)
    store.show_version(chat_id, 0, 0)
    assert texts(store, chat_id) == ["q1", "a1", "q2", "a2 again"]
    assert store.versions(chat_id) == {0: Versions(0, 0, 2), 3: Versions(3, 1, 2)}
    store.show_version(chat_id, 3, 0)
    assert texts(store, chat_id) == ["q1", "a1", "q2", "a2"]
    store.show_version(chat_id, 0, 1)
    assert texts(store, chat_id) == ["q1 edited", "a1 for the edit"]
    assert store.versions(chat_id) == {0: Versions(0, 1, 2)}
    # And back once more: the first branch kept the answer version last shown.
    store.show_version(chat_id, 0, 0)
    assert texts(store, chat_id) == ["q1", "a1", "q2", "a2"]


def test_a_rejected_edit_changes_nothing(store: ChatStore) -> None:
    chat_id = chat_with(store, "q1", "a1")
    with pytest.raises(ValueError, match="role"):
        store.new_version_from(chat_id, 0, role="moderator", text="x")
    assert texts(store, chat_id) == ["q1", "a1"] and store.versions(chat_id) == {}


def test_a_version_that_does_not_exist_is_refused(store: ChatStore) -> None:
    chat_id = chat_with(store, "q1", "a1")
    with pytest.raises(IndexError):
        store.show_version(chat_id, 1, 1)
    store.new_version_from(chat_id, 1)
    store.add_message(chat_id, "assistant", "a1 again", position=1)
    with pytest.raises(IndexError):
        store.show_version(chat_id, 1, 2)
    store.show_version(chat_id, 1, 1)  # the one shown: nothing moves
    assert texts(store, chat_id) == ["q1", "a1 again"]


def test_versions_survive_reopening_and_go_with_a_purged_chat(db_path: Path, store: ChatStore) -> None:
    chat_id = chat_with(store, "q1", "a1")
    store.new_version_from(chat_id, 1)
    store.add_message(chat_id, "assistant", "a1 again", position=1)
    store.close()
    with ChatStore(db_path) as reopened:
        assert reopened.versions(chat_id) == {1: Versions(1, 1, 2)}
        reopened.show_version(chat_id, 1, 0)
        assert texts(reopened, chat_id) == ["q1", "a1"]
        # Search and export see the thread on screen only.
        assert [hit.summary.id for hit in reopened.search("again")] == []
        reopened.delete_chat(chat_id)
        reopened.purge()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM branches").fetchone()[0] == 0
    raw.close()
