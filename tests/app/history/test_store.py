"""CRUD, ordering, soft delete, comparisons and transactions of ChatStore on real SQLite files."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest

from gpt_oss_desktop.app.history import (
    ChatNotFoundError,
    ChatStore,
    HistoryError,
    StoreClosedError,
    schema,
)

from .conftest import FakeClock

STATS = {
    "reasoning_tokens": 1843,
    "final_tokens": 212,
    "ttft": 0.41,
    "thinking_s": 12.3,
    "answer_s": 3.2,
    "tok_s": 38.5,
    "finish_reason": "stop",
}


def test_create_chat_stores_all_fields(store: ChatStore) -> None:
    chat = store.create_chat(
        "First chat",
        system_instructions="Be brief.",
        developer_instructions="Answer in English.",
        model="gpt-oss-20b",
        sampling={"temperature": 1.0, "top_p": 1.0, "max_tokens": 4096},
    )
    loaded = store.get_chat(chat.id)
    assert loaded == chat
    assert loaded.kind == "chat"
    assert loaded.title == "First chat"
    assert loaded.system_instructions == "Be brief."
    assert loaded.developer_instructions == "Answer in English."
    assert loaded.model == "gpt-oss-20b"
    assert loaded.sampling == {"temperature": 1.0, "top_p": 1.0, "max_tokens": 4096}
    assert loaded.deleted_at is None
    assert loaded.messages == ()
    assert loaded.created_at.tzinfo is not None


def test_messages_append_in_order_with_reasoning_effort_and_stats(store: ChatStore) -> None:
    chat = store.create_chat()
    user = store.add_message(chat.id, "user", "What is 2+2?")
    answer = store.add_message(chat.id, "assistant", "4", analysis="Simple sum.", effort="high", stats=STATS)
    assert (user.position, answer.position) == (0, 1)
    loaded = store.get_chat(chat.id)
    assert loaded.messages == (user, answer)
    assert loaded.messages[1].analysis == "Simple sum."
    assert loaded.messages[1].effort == "high"
    assert loaded.messages[1].stats == STATS
    assert loaded.messages[1].complete


def test_invalid_messages_are_rejected(store: ChatStore) -> None:
    chat = store.create_chat()
    with pytest.raises(ValueError, match="role"):
        store.add_message(chat.id, "tool", "x")
    with pytest.raises(ValueError, match="effort"):
        store.add_message(chat.id, "assistant", "x", effort="extreme")
    with pytest.raises(ValueError, match="assistant"):
        store.add_message(chat.id, "user", "x", effort="low")
    with pytest.raises(ChatNotFoundError):
        store.add_message(chat.id + 99, "user", "x")
    store.add_message(chat.id, "user", "x", position=0)
    with pytest.raises(HistoryError, match="rejected"):
        store.add_message(chat.id, "user", "duplicate slot", position=0)
    # Every rejected write rolled back: only the one valid message is there.
    assert [m.text for m in store.get_chat(chat.id).messages] == ["x"]


def test_streaming_answer_partial_then_final_save(store: ChatStore) -> None:
    chat = store.create_chat()
    store.add_message(chat.id, "user", "Explain WAL.")
    answer = store.add_message(chat.id, "assistant", effort="medium", complete=False)
    partial = store.update_message(answer.id, analysis="The user wants", text="", complete=False)
    assert not partial.complete and partial.analysis == "The user wants"
    final = store.update_message(
        answer.id,
        analysis="The user wants WAL explained.",
        text="WAL is a write-ahead log.",
        stats=STATS,
        complete=True,
    )
    assert final.complete and final.text == "WAL is a write-ahead log." and final.stats == STATS
    assert final.effort == "medium"
    assert store.get_chat(chat.id).messages[-1] == final
    with pytest.raises(ChatNotFoundError):
        store.update_message(answer.id + 99, text="x")


def test_non_finite_stats_are_stored_as_null(store: ChatStore) -> None:
    chat = store.create_chat()
    message = store.add_message(chat.id, "assistant", "", effort="low", stats={"tok_s": float("inf")})
    assert message.stats == {"tok_s": None}


def test_list_chats_most_recent_first(store: ChatStore) -> None:
    a = store.create_chat("a")
    b = store.create_chat("b")
    c = store.create_chat("c")
    assert [s.title for s in store.list_chats()] == ["c", "b", "a"]
    store.add_message(a.id, "user", "new activity in a")
    assert [s.title for s in store.list_chats()] == ["a", "c", "b"]
    # A rename is not activity: the order stays.
    store.rename_chat(b.id, "b renamed")
    assert [s.title for s in store.list_chats()] == ["a", "c", "b renamed"]
    assert [s.id for s in store.list_chats(limit=2)] == [a.id, c.id]


def test_rename(store: ChatStore) -> None:
    chat = store.create_chat()
    summary = store.rename_chat(chat.id, "  Sorting\n in Python ")
    assert summary.title == "Sorting in Python"
    assert store.get_chat(chat.id).title == "Sorting in Python"
    with pytest.raises(ValueError):
        store.rename_chat(chat.id, "   ")
    with pytest.raises(ChatNotFoundError):
        store.rename_chat(chat.id + 1, "x")


def test_update_chat_settings(store: ChatStore) -> None:
    chat = store.create_chat(model="a")
    updated = store.update_chat(chat.id, system_instructions="sys", sampling={"temperature": 0.5}, model="b")
    assert (updated.system_instructions, updated.developer_instructions) == ("sys", "")
    assert updated.sampling == {"temperature": 0.5}
    assert updated.model == "b"
    # Settings are not activity: opening a chat re-saves its instructions, and must not move it up the list.
    assert updated.updated_at == chat.updated_at


def test_soft_delete_undo_and_purge(store: ChatStore, clock: FakeClock) -> None:
    keep = store.create_chat("keep")
    gone = store.create_chat("gone")
    store.add_message(gone.id, "user", "hello")
    store.delete_chat(gone.id)
    assert [s.id for s in store.list_chats()] == [keep.id]
    assert {s.id for s in store.list_chats(include_deleted=True)} == {keep.id, gone.id}
    assert store.get_chat(gone.id).deleted_at is not None

    store.undo_delete(gone.id)
    assert store.get_chat(gone.id).deleted_at is None
    assert {s.id for s in store.list_chats()} == {keep.id, gone.id}

    store.delete_chat(gone.id)
    assert store.purge(older_than=timedelta(days=30)) == 0  # deleted just now: kept for undo
    clock.advance(timedelta(days=31))
    assert store.purge(older_than=timedelta(days=30)) == 1
    with pytest.raises(ChatNotFoundError):
        store.get_chat(gone.id)
    with pytest.raises(ChatNotFoundError):
        store.undo_delete(gone.id)
    assert [s.id for s in store.list_chats(include_deleted=True)] == [keep.id]


def test_purge_cascades_to_messages(store: ChatStore, db_path: Path) -> None:
    chat = store.create_chat()
    store.add_message(chat.id, "user", "x")
    store.delete_chat(chat.id)
    assert store.purge() == 1
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    raw.close()


def test_comparison_entry_and_continue_from_column(store: ChatStore) -> None:
    plain = store.create_chat("plain")
    context = store.add_message(plain.id, "user", "Earlier question")
    comparison = store.create_comparison("Is 91 prime?", context=[context], model="gpt-oss-20b")
    assert comparison.kind == "comparison"
    assert comparison.title == "Is 91 prime?"
    answers = [m for m in comparison.messages if m.role == "assistant"]
    assert [(m.position, m.column, m.effort, m.complete) for m in answers] == [
        (2, 0, "low", False),
        (2, 1, "medium", False),
        (2, 2, "high", False),
    ]
    for answer, text in zip(answers, ("Yes", "No, 7 × 13", "No, 7 × 13"), strict=True):
        store.update_message(answer.id, text=text, analysis=f"thinking for {text}", complete=True)
    loaded = store.get_chat(comparison.id)
    assert loaded.columns == (0, 1, 2)
    assert [m.text for m in loaded.thread(2)] == ["Earlier question", "Is 91 prime?", "No, 7 × 13"]

    assert [s.kind for s in store.list_chats(kind="comparison")] == ["comparison"]
    continued = store.continue_from_column(comparison.id, 1)
    assert continued.kind == "chat"
    assert continued.title == "Is 91 prime? (medium)"
    assert [(m.position, m.column, m.role, m.text) for m in continued.messages] == [
        (0, 0, "user", "Earlier question"),
        (1, 0, "user", "Is 91 prime?"),
        (2, 0, "assistant", "No, 7 × 13"),
    ]
    assert continued.messages[2].analysis == "thinking for No, 7 × 13"
    assert continued.meta == {"continued_from": {"chat_id": comparison.id, "column": 1}}
    with pytest.raises(ValueError):
        store.continue_from_column(comparison.id, 5)


def test_history_survives_reopening(db_path: Path, clock: FakeClock) -> None:
    with ChatStore(db_path, clock=clock) as first:
        chat = first.create_chat("survivor", model="gpt-oss-20b")
        first.add_message(chat.id, "user", "remember me")
        first.add_message(chat.id, "assistant", "I will", analysis="reasoning", effort="low", stats=STATS)
        before = first.get_chat(chat.id)
    assert not Path(f"{db_path}-wal").exists() or Path(f"{db_path}-wal").stat().st_size == 0
    with ChatStore(db_path, clock=clock) as second:
        assert second.get_chat(chat.id) == before
        assert [s.id for s in second.list_chats()] == [chat.id]
        assert [h.chat.id for h in second.search("remember")] == [chat.id]


def test_wal_and_foreign_keys_are_on(store: ChatStore, db_path: Path) -> None:
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()
    # The store's own connection enforces foreign keys (a per-connection setting in SQLite).
    with store.transaction():
        assert store._connection().execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_exception_in_transaction_rolls_back_everything(store: ChatStore) -> None:
    chat = store.create_chat("before")
    store.add_message(chat.id, "user", "kept")
    before = store.get_chat(chat.id)
    with pytest.raises(RuntimeError, match="simulated crash"), store.transaction():
        store.add_message(chat.id, "assistant", "half-written", effort="low")
        store.rename_chat(chat.id, "after")
        store.create_chat("never")
        raise RuntimeError("simulated crash")
    assert store.get_chat(chat.id) == before
    assert [s.title for s in store.list_chats()] == ["before"]
    # The store is still usable after the rollback.
    store.add_message(chat.id, "assistant", "later", effort="low")
    assert len(store.get_chat(chat.id).messages) == 2


def test_nested_transaction_failure_undoes_only_inner_block(store: ChatStore) -> None:
    chat = store.create_chat()
    with store.transaction():
        store.add_message(chat.id, "user", "outer")
        with pytest.raises(ValueError), store.transaction():
            store.add_message(chat.id, "user", "inner")
            raise ValueError("inner failure")
        store.add_message(chat.id, "user", "outer again")
    assert [m.text for m in store.get_chat(chat.id).messages] == ["outer", "outer again"]


def test_closed_store_raises(db_path: Path) -> None:
    store = ChatStore(db_path)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosedError):
        store.list_chats()


def test_pinned_chats_come_first_and_persist(db_path: Path, clock: FakeClock) -> None:
    with ChatStore(db_path, clock=clock) as store:
        a = store.create_chat("a")
        b = store.create_chat("b")
        c = store.create_chat("c")
        assert not store.get_chat(a.id).pinned
        summary = store.pin_chat(a.id, True)
        assert summary.pinned and summary.updated_at == a.updated_at  # pinning is not activity
        assert [s.title for s in store.list_chats()] == ["a", "c", "b"]
        store.add_message(b.id, "user", "newer activity")
        assert [s.title for s in store.list_chats()] == ["a", "b", "c"]
        with pytest.raises(ChatNotFoundError):
            store.pin_chat(c.id + 99, True)
    with ChatStore(db_path, clock=clock) as reopened:
        assert [(s.title, s.pinned) for s in reopened.list_chats()] == [("a", True), ("b", False), ("c", False)]
        assert reopened.get_chat(a.id).pinned
        reopened.pin_chat(a.id, False)
        assert [s.title for s in reopened.list_chats()] == ["b", "c", "a"]


def test_a_version_1_file_upgrades_in_place_with_chats_unpinned(db_path: Path, clock: FakeClock) -> None:
    # A history as version 1 of the app left it: its migration only, its rows written by plain SQL.
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    schema.create_migrations_table(raw)
    schema.MIGRATIONS[0].apply(raw)
    raw.execute("INSERT INTO schema_migrations VALUES (1, 'chats and messages', 0)")
    for chat_id, title, updated in ((1, "older", 10), (2, "newer", 20)):
        raw.execute(
            "INSERT INTO chats (id, title, created_at, updated_at) VALUES (?, ?, 0, ?)", (chat_id, title, updated)
        )
        raw.execute(
            "INSERT INTO messages (chat_id, position, role, text, created_at) VALUES (?, 0, 'user', ?, 0)",
            (chat_id, f"capybara {title}"),
        )
    raw.commit()
    raw.close()
    with ChatStore(db_path, clock=clock) as store:
        chats = store.list_chats()
        assert [(s.title, s.pinned) for s in chats] == [("newer", False), ("older", False)]
        assert [m.text for m in store.get_chat(1).messages] == ["capybara older"]
        assert [hit.chat.id for hit in store.search("capybara")] == [2, 1]
        store.pin_chat(1, True)
        assert [s.title for s in store.list_chats()] == ["older", "newer"]
    check = sqlite3.connect(db_path)
    assert check.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == schema.SCHEMA_VERSION == 5
    check.close()
