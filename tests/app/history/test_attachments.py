"""Files attached to questions in the history: saved with the message on a real SQLite file and read back, kept by
versions and copies, migrated into from an older file, found by name, and written to the Markdown and JSON exports."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.history import (
    Attachment,
    ChatStore,
    CorruptDatabaseError,
    ImportFormatError,
    chat_from_json,
    message_text,
    schema,
)

from .conftest import FakeClock

NOTES = Attachment("notes.md", "# Capybaras\n\nThe largest rodent.\n\n```sh\nls\n```\n", 52, 17)
TABLE = Attachment("table.csv", "name,kg\ncapybara,50\n", 20, 9)


def question_with_files(store: ChatStore, title: str = "Rodents") -> tuple[int, int]:
    """A chat whose question has two files, and its answer; the chat's id and the question's."""
    chat = store.create_chat(title)
    question = store.add_message(chat.id, "user", "Compare these.", attachments=[NOTES, TABLE])
    store.add_message(chat.id, "assistant", "The capybara wins.", effort="low")
    return chat.id, question.id


def test_files_round_trip_through_the_file_and_a_reopen(db_path: Path, clock: FakeClock) -> None:
    with ChatStore(db_path, clock=clock) as store:
        chat_id, question_id = question_with_files(store)
        assert store.get_chat(chat_id).messages[0].attachments == (NOTES, TABLE)
    with ChatStore(db_path, clock=clock) as reopened:
        question, answer = reopened.get_chat(chat_id).messages
        assert (question.id, question.text, question.attachments) == (question_id, "Compare these.", (NOTES, TABLE))
        assert answer.attachments == ()
    raw = sqlite3.connect(db_path)
    (stored,) = raw.execute("SELECT attachments_json FROM messages WHERE id = ?", (question_id,)).fetchone()
    raw.close()
    assert json.loads(stored) == [
        {"name": "notes.md", "text": NOTES.text, "size": 52, "tokens": 17},
        {"name": "table.csv", "text": TABLE.text, "size": 20, "tokens": 9},
    ]


@pytest.mark.parametrize(
    ("role", "files", "error"),
    [
        ("assistant", [NOTES], "only user messages carry attached files"),
        ("user", [{"name": "a.txt"}], "needs a string 'name' and a string 'text'"),
        ("user", [{"name": "../etc/passwd", "text": "x"}], "not a clean file name"),
        ("user", [{"name": "a.txt", "text": "x", "size": -1}], "size must be a whole number"),
        ("user", "notes.md", "must be a list"),
    ],
    ids=["answer", "no-text", "path", "negative-size", "not-a-list"],
)
def test_malformed_files_are_refused_and_change_nothing(store: ChatStore, role: str, files: Any, error: str) -> None:
    chat = store.create_chat("x")
    with pytest.raises((ValueError, TypeError), match=error):
        store.add_message(chat.id, role, "hello", attachments=files)
    assert store.get_chat(chat.id).messages == ()


def test_an_edited_question_keeps_the_old_files_as_a_version(store: ChatStore) -> None:
    chat_id, _ = question_with_files(store)
    edited = store.new_version_from(chat_id, 0, role="user", text="Only this one.", attachments=[TABLE])
    assert edited is not None and edited.attachments == (TABLE,)
    (old_question, _answer) = store.version_messages(chat_id, 0, 0)
    assert (old_question.text, old_question.attachments) == ("Compare these.", (NOTES, TABLE))
    shown = store.show_version(chat_id, 0, 0)
    assert shown.messages[0].attachments == (NOTES, TABLE)
    assert store.version_messages(chat_id, 0, 1)[0].attachments == (TABLE,)


def test_copies_keep_the_files(store: ChatStore) -> None:
    chat_id, _ = question_with_files(store)
    context = store.get_chat(chat_id).messages
    comparison = store.create_comparison("Which is heavier?", context=context)
    assert comparison.messages[0].attachments == (NOTES, TABLE)
    continued = store.continue_from_column(comparison.id, 1)
    assert continued.messages[0].attachments == (NOTES, TABLE)


def test_a_comparisons_prompt_keeps_its_files_through_continue_and_export(store: ChatStore) -> None:
    comparison = store.create_comparison("Which is heavier?", attachments=[TABLE])
    prompt, *answers = comparison.messages
    assert (prompt.role, prompt.text, prompt.attachments) == ("user", "Which is heavier?", (TABLE,))
    assert [a.attachments for a in answers] == [(), (), ()]
    assert store.continue_from_column(comparison.id, 2).messages[0].attachments == (TABLE,)
    imported = store.import_json(store.export_json(comparison.id))
    assert imported.kind == "comparison" and imported.messages[0].attachments == (TABLE,)
    assert f"## User\n\n{message_text('Which is heavier?', [TABLE])}\n" in store.export_markdown(comparison.id)


def test_exports_carry_the_files(store: ChatStore) -> None:
    chat_id, _ = question_with_files(store)
    markdown = store.export_markdown(chat_id)
    # The question reads as the model read it: the text, then each file in a fence that its own ``` cannot close.
    assert f"## User\n\n{message_text('Compare these.', [NOTES, TABLE])}\n\n## Assistant" in markdown
    assert "Attached file: notes.md\n````md\n# Capybaras\n" in markdown
    document = json.loads(store.export_json(chat_id))
    question, answer = document["messages"]
    assert question["attachments"] == [
        {"name": "notes.md", "text": NOTES.text, "size": 52, "tokens": 17},
        {"name": "table.csv", "text": TABLE.text, "size": 20, "tokens": 9},
    ]
    assert question["text"] == "Compare these." and "attachments" not in answer
    # Export, import, export: the same text, files included.
    imported = store.import_json(store.export_json(chat_id))
    assert imported.messages[0].attachments == (NOTES, TABLE)
    assert store.export_json(imported.id) == store.export_json(chat_id)


def test_an_export_from_elsewhere_needs_only_name_and_text(store: ChatStore) -> None:
    chat_id, _ = question_with_files(store)
    document = json.loads(store.export_json(chat_id))
    document["messages"][0]["attachments"] = [{"name": "note.txt", "text": "héllo"}]
    chat = chat_from_json(json.dumps(document))
    assert chat.messages[0].attachments == (Attachment("note.txt", "héllo", 6, None),)


@pytest.mark.parametrize(
    ("message_index", "files", "match"),
    [
        (0, "notes.md", "field 'attachments' has the wrong type"),
        (0, [{"name": "", "text": "x"}], "message 0: attachments\\[0\\]"),
        (1, [{"name": "a.txt", "text": "x"}], "only user messages carry attached files"),
    ],
)
def test_import_refuses_malformed_files(store: ChatStore, message_index: int, files: Any, match: str) -> None:
    chat_id, _ = question_with_files(store)
    document = json.loads(store.export_json(chat_id))
    document["messages"][message_index]["attachments"] = files
    with pytest.raises(ImportFormatError, match=match):
        store.import_json(json.dumps(document))
    assert [s.id for s in store.list_chats()] == [chat_id]


def test_search_finds_a_question_by_its_files_names(db_path: Path, clock: FakeClock, use_fts: bool) -> None:
    with ChatStore(db_path, clock=clock, use_fts=use_fts) as store:
        chat_id, question_id = question_with_files(store)
        store.create_chat("Other")
        for query in ("table.csv", "table", "notes"):
            assert [(hit.chat.id, hit.message_id) for hit in store.search(query)] == [(chat_id, question_id)], query
        assert "[table]" in store.search("table")[0].snippet
        assert store.search("largest") == []  # the files' contents are not indexed, only their names
        # The index follows the file's edits: the version that drops notes.md is no longer found by it.
        store.new_version_from(chat_id, 0, role="user", text="Just the table.", attachments=[TABLE])
        assert store.search("notes") == []
    if use_fts:
        raw = sqlite3.connect(db_path)
        try:
            raw.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
            found = raw.execute("SELECT count(*) FROM messages_fts WHERE attachments MATCH 'table'").fetchone()[0]
        finally:
            raw.close()
        assert found == 1


def write_v4_history(path: Path) -> None:
    """A history as version 4 of the app left it: its migrations, rows by plain SQL, and the question archived as an
    earlier version in the v4 shape (no attachments_json in the branch's JSON)."""
    path.parent.mkdir(parents=True)
    raw = sqlite3.connect(path)
    schema.create_migrations_table(raw)
    for migration in schema.MIGRATIONS[:4]:
        migration.apply(raw)
        raw.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (migration.version, migration.description))
    raw.execute("INSERT INTO chats (id, title, created_at, updated_at) VALUES (1, 'Capybaras', 0, 10)")
    for position, role, text, created in ((0, "user", "how heavy is a capybara", 3), (1, "assistant", "50 kg", 4)):
        raw.execute(
            "INSERT INTO messages (chat_id, position, role, text, created_at) VALUES (1, ?, ?, ?, ?)",
            (position, role, text, created),
        )
    old_question = {
        "position": 0,
        "column": 0,
        "role": "user",
        "text": "how big is a capybara",
        "analysis": "",
        "effort": None,
        "stats_json": "{}",
        "complete": 1,
        "tool_calls_json": "[]",
        "created_at": 1,
    }
    raw.execute(
        "INSERT INTO branches (chat_id, position, started_at, messages_json) VALUES (1, 0, 1, ?)",
        (json.dumps([old_question]),),
    )
    raw.commit()
    raw.close()


def test_a_version_4_file_upgrades_with_no_files_anywhere(db_path: Path, clock: FakeClock) -> None:
    write_v4_history(db_path)
    with ChatStore(db_path, clock=clock) as store:
        assert [(m.text, m.attachments) for m in store.get_chat(1).messages] == [
            ("how heavy is a capybara", ()),
            ("50 kg", ()),
        ]
        assert [hit.chat.id for hit in store.search("capybara")] == [1]
        # The question archived by v4 reads and comes back without files; the new column takes them.
        assert [(m.text, m.attachments) for m in store.version_messages(1, 0, 0)] == [("how big is a capybara", ())]
        shown = store.show_version(1, 0, 0)
        assert [(m.text, m.attachments) for m in shown.messages] == [("how big is a capybara", ())]
        edited = store.new_version_from(1, 0, role="user", text="and this?", attachments=[TABLE])
        assert edited is not None and edited.attachments == (TABLE,)
        assert [hit.chat.id for hit in store.search("table")] == [1]
    check = sqlite3.connect(db_path)
    assert check.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == schema.SCHEMA_VERSION == 5
    columns = {row[1]: row for row in check.execute("PRAGMA table_info(messages)")}
    assert columns["attachments_json"][3:5] == (1, "'[]'")  # NOT NULL, default '[]'
    assert columns["attachment_names"][3:5] == (1, "''")
    assert check.execute("SELECT attachment_names FROM messages WHERE position = 0").fetchone() == ("table.csv",)
    # Held to JSON by the migration's triggers, for inserts and updates alike.
    with pytest.raises(sqlite3.IntegrityError, match="attachments_json is not JSON"):
        check.execute("UPDATE messages SET attachments_json = 'not json'")
    with pytest.raises(sqlite3.IntegrityError, match="attachments_json is not JSON"):
        check.execute(
            "INSERT INTO messages (chat_id, position, role, created_at, attachments_json) VALUES (1, 9, 'user', 0, '[')"
        )
    check.close()


@pytest.mark.parametrize("stored", ["{}", '[{"name": "a.txt"}]', '[{"name": "a/b", "text": ""}]', "[1]"], ids=repr)
def test_damaged_files_are_a_corrupt_database_error(db_path: Path, clock: FakeClock, stored: str) -> None:
    with ChatStore(db_path, clock=clock) as store:
        chat_id, question_id = question_with_files(store)
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE messages SET attachments_json = ? WHERE id = ?", (stored, question_id))
    raw.commit()
    raw.close()
    with ChatStore(db_path, clock=clock) as store:
        with pytest.raises(CorruptDatabaseError, match="damaged row in messages"):
            store.get_chat(chat_id)
        assert [s.id for s in store.list_chats()] == [chat_id]  # the rest of the history still reads
