"""An answer's tool calls through the real SQLite store: written with the answer, kept through partial saves,
versions, copies and re-import, migrated into a v3 file, and reported as damage when the stored value is garbled."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.history import (
    ChatStore,
    CorruptDatabaseError,
    ImportFormatError,
    schema,
)

from .conftest import FakeClock

PYTHON_CALL: dict[str, Any] = {
    "recipient": "python",
    "arguments": "print(17 * 23)",
    "channel": "analysis",
    "content_type": None,
    "reasoning": "Multiply with the tool.",
    "status": "ok",
    "output": "391\n",
    "seconds": 0.12,
    "approval": "asked",
}
FUNCTION_CALL: dict[str, Any] = {
    "recipient": "functions.convert_units",
    "arguments": '{"value": 3, "from": "km", "to": "mi"}',
    "channel": "commentary",
    "content_type": "<|constrain|>json",
    "reasoning": "",
    "status": "denied",
    "output": "The user did not allow this call.",
    "seconds": 0.0,
    "approval": "denied",
    "server": "builtin",  # a key the record does not name: kept as given
}


def answer_with_calls(store: ChatStore) -> tuple[int, int]:
    chat = store.create_chat("Tools")
    store.add_message(chat.id, "user", "17 × 23?")
    answer = store.add_message(chat.id, "assistant", "", effort="low", complete=False, tool_calls=[PYTHON_CALL])
    return chat.id, answer.id


def test_calls_round_trip_through_add_update_and_reopen(db_path: Path, clock: FakeClock) -> None:
    with ChatStore(db_path, clock=clock) as store:
        chat_id, answer_id = answer_with_calls(store)
        assert store.get_chat(chat_id).messages[1].tool_calls == (PYTHON_CALL,)
        # None keeps the calls; a partial save of the text must not drop them.
        kept = store.update_message(answer_id, text="It is", complete=False)
        assert kept.tool_calls == (PYTHON_CALL,)
        done = store.update_message(answer_id, text="391", complete=True, tool_calls=(PYTHON_CALL, FUNCTION_CALL))
        assert done.tool_calls == (PYTHON_CALL, FUNCTION_CALL)
        assert store.get_chat(chat_id).messages[0].tool_calls == ()
    with ChatStore(db_path, clock=clock) as reopened:
        answer = reopened.get_chat(chat_id).messages[1]
        assert (answer.text, answer.tool_calls) == ("391", (PYTHON_CALL, FUNCTION_CALL))
        assert [call["recipient"] for call in answer.tool_calls] == ["python", "functions.convert_units"]
        assert reopened.update_message(answer_id, tool_calls=[]).tool_calls == ()


def test_calls_are_stored_as_json_and_cleaned(store: ChatStore, db_path: Path) -> None:
    chat_id, answer_id = answer_with_calls(store)
    odd = {"recipient": "python", "seconds": float("nan"), "nested": {"values": (1, 2)}}
    assert store.update_message(answer_id, tool_calls=[odd]).tool_calls == (
        {"recipient": "python", "seconds": None, "nested": {"values": [1, 2]}},
    )
    raw = sqlite3.connect(db_path)
    (stored,) = raw.execute("SELECT tool_calls_json FROM messages WHERE id = ?", (answer_id,)).fetchone()
    (user_calls,) = raw.execute("SELECT tool_calls_json FROM messages WHERE chat_id = ? AND role = 'user'", (chat_id,))
    raw.close()
    assert json.loads(stored) == [{"nested": {"values": [1, 2]}, "recipient": "python", "seconds": None}]
    assert user_calls == ("[]",)


@pytest.mark.parametrize(
    ("calls", "error"),
    [
        ({"recipient": "python"}, TypeError),  # one object, not a list of them
        ("python", TypeError),
        ([["python"]], TypeError),
        ([{"arguments": "1 + 1"}], ValueError),  # no recipient
        ([{"recipient": 7}], ValueError),
        ([{"recipient": "python", "output": object()}], TypeError),
    ],
)
def test_malformed_calls_are_refused_and_change_nothing(store: ChatStore, calls: Any, error: type) -> None:
    chat_id, answer_id = answer_with_calls(store)
    with pytest.raises(error):
        store.update_message(answer_id, text="changed", tool_calls=calls)
    with pytest.raises(error):
        store.add_message(chat_id, "assistant", "another", tool_calls=calls)
    chat = store.get_chat(chat_id)
    assert [m.text for m in chat.messages] == ["17 × 23?", ""]
    assert chat.messages[1].tool_calls == (PYTHON_CALL,)


def test_only_answers_carry_calls(store: ChatStore) -> None:
    chat_id, _ = answer_with_calls(store)
    with pytest.raises(ValueError, match="only assistant"):
        store.add_message(chat_id, "user", "q", tool_calls=[PYTHON_CALL])
    question = store.get_chat(chat_id).messages[0]
    with pytest.raises(ValueError, match="only assistant"):
        store.update_message(question.id, tool_calls=[PYTHON_CALL])
    assert store.update_message(question.id, tool_calls=[]).tool_calls == ()  # no calls is fine for any role


def test_a_regenerated_answer_keeps_the_calls_of_the_old_one(store: ChatStore) -> None:
    chat_id, answer_id = answer_with_calls(store)
    store.update_message(answer_id, text="391", complete=True, tool_calls=[PYTHON_CALL, FUNCTION_CALL])
    store.new_version_from(chat_id, 1)
    store.add_message(chat_id, "assistant", "About 400", effort="low")
    assert store.get_chat(chat_id).messages[1].tool_calls == ()
    archived = store.version_messages(chat_id, 1, 0)
    assert [(m.text, m.tool_calls) for m in archived] == [("391", (PYTHON_CALL, FUNCTION_CALL))]
    # Back to the first answer: its calls come back with it, and the regenerated one keeps (no) calls as a version.
    chat = store.show_version(chat_id, 1, 0)
    assert (chat.messages[1].text, chat.messages[1].tool_calls) == ("391", (PYTHON_CALL, FUNCTION_CALL))
    assert [(m.text, m.tool_calls) for m in store.version_messages(chat_id, 1, 1)] == [("About 400", ())]


def test_copies_of_answers_keep_their_calls(store: ChatStore) -> None:
    chat_id, answer_id = answer_with_calls(store)
    store.update_message(answer_id, text="391", complete=True)
    context = store.get_chat(chat_id).messages
    comparison = store.create_comparison("And 17 × 24?", context=context)
    assert comparison.messages[1].tool_calls == (PYTHON_CALL,)
    answer = next(m for m in comparison.messages if m.role == "assistant" and m.position == 3 and m.column == 2)
    store.update_message(answer.id, text="408", complete=True, tool_calls=[FUNCTION_CALL])
    continued = store.continue_from_column(comparison.id, 2)
    assert [m.tool_calls for m in continued.messages] == [(), (PYTHON_CALL,), (), (FUNCTION_CALL,)]


def test_json_export_carries_calls_and_reimports_them(store: ChatStore) -> None:
    chat_id, answer_id = answer_with_calls(store)
    store.update_message(answer_id, text="391", complete=True, tool_calls=[PYTHON_CALL, FUNCTION_CALL])
    exported = store.export_json(chat_id)
    messages = json.loads(exported)["messages"]
    assert messages[1]["tool_calls"] == [PYTHON_CALL, FUNCTION_CALL]
    assert "tool_calls" not in messages[0]  # messages without calls read as before calls existed
    imported = store.import_json(exported)
    assert imported.without_ids() == store.get_chat(chat_id).without_ids()
    assert store.export_json(imported.id) == exported


@pytest.mark.parametrize(
    ("message_index", "calls", "match"),
    [
        (1, {"recipient": "python"}, "tool_calls"),
        (1, [{"arguments": "x"}], "recipient"),
        (1, ["python"], "must be an object"),
        (0, [PYTHON_CALL], "only assistant"),
    ],
)
def test_import_refuses_malformed_calls(store: ChatStore, message_index: int, calls: Any, match: str) -> None:
    chat_id, _ = answer_with_calls(store)
    document = json.loads(store.export_json(chat_id))
    document["messages"][message_index]["tool_calls"] = calls
    with pytest.raises(ImportFormatError, match=match):
        store.import_json(json.dumps(document))
    assert [s.id for s in store.list_chats()] == [chat_id]


def write_v3_history(path: Path) -> None:
    """A history as version 3 of the app left it: its three migrations, rows by plain SQL, one answer archived as a
    version in the v3 shape (no tool_calls_json in the branch's JSON)."""
    path.parent.mkdir(parents=True)
    raw = sqlite3.connect(path)
    schema.create_migrations_table(raw)
    for migration in schema.MIGRATIONS[:3]:
        migration.apply(raw)
        raw.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (migration.version, migration.description))
    raw.execute("INSERT INTO chats (id, title, created_at, updated_at) VALUES (1, 'Capybaras', 0, 10)")
    rows = ((0, "user", "how heavy is a capybara", 1), (1, "assistant", "about 50 kg", 3))
    for position, role, text, created in rows:
        raw.execute(
            "INSERT INTO messages (chat_id, position, role, text, created_at) VALUES (1, ?, ?, ?, ?)",
            (position, role, text, created),
        )
    old_answer = {
        "position": 1,
        "column": 0,
        "role": "assistant",
        "text": "heavy",
        "analysis": "",
        "effort": None,
        "stats_json": "{}",
        "complete": 1,
        "created_at": 2,
    }
    raw.execute(
        "INSERT INTO branches (chat_id, position, started_at, messages_json) VALUES (1, 1, 2, ?)",
        (json.dumps([old_answer]),),
    )
    raw.commit()
    raw.close()


def test_a_version_3_file_upgrades_with_no_calls_anywhere(db_path: Path, clock: FakeClock) -> None:
    write_v3_history(db_path)
    with ChatStore(db_path, clock=clock) as store:
        chat = store.get_chat(1)
        assert [(m.text, m.tool_calls) for m in chat.messages] == [("how heavy is a capybara", ()), ("about 50 kg", ())]
        assert [hit.chat.id for hit in store.search("capybara")] == [1]
        # The answer archived by v3 reads and comes back without calls, and the new column takes them.
        assert [(m.text, m.tool_calls) for m in store.version_messages(1, 1, 0)] == [("heavy", ())]
        shown = store.show_version(1, 1, 0)
        assert [(m.text, m.tool_calls) for m in shown.messages][1] == ("heavy", ())
        updated = store.update_message(shown.messages[1].id, tool_calls=[PYTHON_CALL])
        assert updated.tool_calls == (PYTHON_CALL,)
        assert [m.text for m in store.version_messages(1, 1, 1)] == ["about 50 kg"]
    check = sqlite3.connect(db_path)
    assert check.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] == schema.SCHEMA_VERSION == 5
    columns = {row[1]: row for row in check.execute("PRAGMA table_info(messages)")}
    assert columns["tool_calls_json"][3:5] == (1, "'[]'")  # NOT NULL, default '[]'
    with pytest.raises(sqlite3.IntegrityError):  # the CHECK came with the column
        check.execute("UPDATE messages SET tool_calls_json = 'not json'")
    check.close()


@pytest.mark.parametrize(
    "stored", ["not json", "{}", '"python"', '[{"arguments": "1"}]', '[{"recipient": 7}]', "[1]"], ids=repr
)
def test_damaged_calls_are_a_corrupt_database_error(db_path: Path, clock: FakeClock, stored: str) -> None:
    with ChatStore(db_path, clock=clock) as store:
        chat_id, answer_id = answer_with_calls(store)
    raw = sqlite3.connect(db_path)
    # As a damaged page (or another program) could leave it: past the CHECK, which only knows valid JSON.
    raw.execute("PRAGMA ignore_check_constraints = ON")
    raw.execute("UPDATE messages SET tool_calls_json = ? WHERE id = ?", (stored, answer_id))
    raw.commit()
    raw.close()
    with ChatStore(db_path, clock=clock) as store:
        with pytest.raises(CorruptDatabaseError, match="damaged row in messages"):
            store.get_chat(chat_id)
        assert [s.id for s in store.list_chats()] == [chat_id]  # the rest of the history still reads
        assert [hit.chat.id for hit in store.search("17")] == [chat_id]  # and searched: the calls read as none
    with ChatStore(db_path, clock=clock, use_fts=False) as scanning:
        assert [hit.chat.id for hit in scanning.search("17")] == [chat_id]


def test_damaged_calls_in_an_archived_version_are_a_corrupt_database_error(store: ChatStore, db_path: Path) -> None:
    chat_id, _ = answer_with_calls(store)
    store.new_version_from(chat_id, 1)
    raw = sqlite3.connect(db_path)
    (text,) = raw.execute("SELECT messages_json FROM branches").fetchone()
    archived = json.loads(text)
    archived[0]["tool_calls_json"] = '{"recipient": "python"}'
    raw.execute("UPDATE branches SET messages_json = ?", (json.dumps(archived),))
    raw.commit()
    raw.close()
    with pytest.raises(CorruptDatabaseError, match="damaged row in messages"):
        store.version_messages(chat_id, 1, 0)


def test_search_finds_answers_by_their_text_and_by_their_tool_calls(
    db_path: Path, clock: FakeClock, use_fts: bool
) -> None:
    # The calls are searched with the answer (test_search.py has the index's own tests): text, result and name.
    with ChatStore(db_path, clock=clock, use_fts=use_fts) as store:
        chat_id, answer_id = answer_with_calls(store)
        store.update_message(answer_id, text="the product is capybara", tool_calls=[PYTHON_CALL | {"output": "wombat"}])
        assert [hit.chat.id for hit in store.search("capybara")] == [chat_id]
        assert [(hit.chat.id, hit.message_id) for hit in store.search("wombat")] == [(chat_id, answer_id)]
        store.update_message(answer_id, tool_calls=[FUNCTION_CALL])
        assert store.search("wombat") == []
        assert [hit.chat.id for hit in store.search("convert_units")] == [chat_id]
