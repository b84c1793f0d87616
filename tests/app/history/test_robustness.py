"""Crash safety, concurrent access, and files the store must refuse without harming them."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gpt_oss_desktop.app.history import (
    SCHEMA_VERSION,
    ChatStore,
    CorruptDatabaseError,
    ForeignDatabaseError,
    HistoryError,
    SchemaTooNewError,
)
from tests.helpers.history_files import write_damaged_history

REPO_ROOT = Path(__file__).resolve().parents[3]


def run_and_die(db_path: Path, body: str) -> None:
    """Run ``body`` in a child process that opens the store as ``store`` and is killed by os._exit partway.

    os._exit skips every cleanup (no rollback, no close), like a crash or a kill of the app.
    """
    script = (
        "import os, sys\nfrom gpt_oss_desktop.app.history import ChatStore\nstore = ChatStore(sys.argv[1])\n" + body
    )
    result = subprocess.run(
        [sys.executable, "-P", "-c", script, str(db_path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 9, result.stderr


def test_process_killed_mid_transaction_keeps_prior_data(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        chat = store.create_chat("prior")
        store.add_message(chat.id, "user", "committed before the crash")
        before = store.get_chat(chat.id)
    run_and_die(
        db_path,
        f"with store.transaction():\n"
        f"    store.add_message({chat.id}, 'assistant', 'never committed', effort='low')\n"
        f"    store.rename_chat({chat.id}, 'renamed in the lost transaction')\n"
        f"    os._exit(9)\n",
    )
    with ChatStore(db_path) as reopened:
        assert reopened.get_chat(chat.id) == before
        raw = sqlite3.connect(db_path)
        try:
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            raw.close()


def test_partial_answer_survives_a_crash(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        chat = store.create_chat()
        store.add_message(chat.id, "user", "Write a long story.")
        answer = store.add_message(chat.id, "assistant", effort="high", complete=False)
    run_and_die(
        db_path,
        f"store.update_message({answer.id}, analysis='Plan: a dragon', text='Once upon', complete=False)\n"
        f"os._exit(9)\n",
    )
    with ChatStore(db_path) as reopened:
        saved = reopened.get_chat(chat.id).messages[-1]
    assert (saved.analysis, saved.text, saved.complete, saved.effort) == ("Plan: a dragon", "Once upon", False, "high")


# The child streams an answer through the app's own writer (app/chat/answer_saver.py) with no throttling, so that a
# write is always in flight, and reports each committed save on stdout.
_STREAMING_WRITER = """
import sys
from gpt_oss_desktop.app.chat.answer_saver import AnswerSaver
from gpt_oss_desktop.app.history import ChatStore

store = ChatStore(sys.argv[1])
saver = AnswerSaver(store, int(sys.argv[2]), 1, "high", interval=0.0)
saver.add_reasoning("Plan: count upwards.")
for i in range(1_000_000):
    saver.add_answer(f"w{i} ")
    saver.save_progress()
    print(i, flush=True)
"""


def test_sigkill_while_an_answer_is_being_saved_loses_nothing_committed(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        earlier = store.create_chat("earlier chat")
        store.add_message(earlier.id, "user", "an older question")
        store.add_message(earlier.id, "assistant", "its answer", analysis="its reasoning", effort="low")
        chat = store.create_chat("streaming")
        store.add_message(chat.id, "user", "Count for me.")
        before = store.get_chat(earlier.id)
    child = subprocess.Popen(
        [sys.executable, "-P", "-c", _STREAMING_WRITER, str(db_path), str(chat.id)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        last_committed = -1
        while last_committed < 200:  # a few hundred commits in, the text is ~1.5 kB and still growing
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "writer ended early"
            last_committed = int(line)
        os.kill(child.pid, signal.SIGKILL)  # no cleanup at all, whichever statement it is in
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        for stream in (child.stdout, child.stderr):
            if stream is not None:
                stream.close()
    raw = sqlite3.connect(db_path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
        if raw.execute("SELECT 1 FROM sqlite_master WHERE name = 'messages_fts'").fetchone():
            # The full-text index is kept by triggers in the same transactions: it must match the table (raises
            # sqlite3.DatabaseError if not).
            raw.execute("INSERT INTO messages_fts (messages_fts) VALUES ('integrity-check')")
    finally:
        raw.close()
    with ChatStore(db_path) as reopened:
        assert reopened.get_chat(earlier.id) == before
        question, answer = reopened.get_chat(chat.id).messages
        assert [hit.chat.id for hit in reopened.search("w5")] == [chat.id]
    assert question.text == "Count for me."
    # The answer is exactly some committed prefix: never torn, never older than the last save reported done.
    words = answer.text.split()
    assert len(words) > last_committed and words == [f"w{i}" for i in range(len(words))]
    assert (answer.analysis, answer.effort, answer.complete) == ("Plan: count upwards.", "high", False)


def test_reader_sees_last_commit_while_writer_holds_a_transaction(db_path: Path) -> None:
    writer = ChatStore(db_path)
    reader = ChatStore(db_path)
    try:
        chat = writer.create_chat("shared")
        writer.add_message(chat.id, "user", "first")
        with writer.transaction():
            writer.add_message(chat.id, "assistant", "in flight", effort="low")
            started = time.monotonic()
            # WAL: the reader gets the committed snapshot at once, neither blocking nor seeing uncommitted rows.
            assert [m.text for m in reader.get_chat(chat.id).messages] == ["first"]
            assert [s.title for s in reader.list_chats()] == ["shared"]
            assert time.monotonic() - started < 1.0
        assert [m.text for m in reader.get_chat(chat.id).messages] == ["first", "in flight"]
    finally:
        writer.close()
        reader.close()


def test_concurrent_threads_read_consistent_snapshots(db_path: Path) -> None:
    writer = ChatStore(db_path)
    reader = ChatStore(db_path)
    chat = writer.create_chat("busy")
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for i in range(60):
                # A turn is a user message plus its answer, written as one transaction.
                with writer.transaction():
                    writer.add_message(chat.id, "user", f"q{i}")
                    writer.add_message(chat.id, "assistant", f"a{i}", effort="low")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    seen = []
    try:
        while thread.is_alive():
            count = len(reader.get_chat(chat.id).messages)
            # Never half a turn: the pair is committed atomically.
            assert count % 2 == 0
            seen.append(count)
        thread.join()
        assert not errors
        assert len(reader.get_chat(chat.id).messages) == 120
    finally:
        thread.join()
        writer.close()
        reader.close()
    assert seen == sorted(seen)


def test_newer_schema_is_refused_and_left_untouched(db_path: Path) -> None:
    with ChatStore(db_path) as store:
        store.create_chat("from the future")
    raw = sqlite3.connect(db_path)
    raw.execute("INSERT INTO schema_migrations VALUES (?, 'future', 0)", (SCHEMA_VERSION + 1,))
    raw.commit()
    raw.close()
    digest = hashlib.sha256(db_path.read_bytes()).hexdigest()
    with pytest.raises(SchemaTooNewError) as caught:
        ChatStore(db_path)
    assert caught.value.found == SCHEMA_VERSION + 1
    assert caught.value.supported == SCHEMA_VERSION
    assert isinstance(caught.value, HistoryError)
    assert str(db_path) in str(caught.value)
    assert "update the app" in str(caught.value)
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == digest


@pytest.mark.parametrize(
    "content",
    [b"this is not a database, just notes\n" * 200, b"SQLite format 3\x00" + b"\xff" * 4000],
    ids=["text", "bad-header"],
)
def test_corrupt_file_is_reported_and_kept(db_path: Path, content: bytes) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(content)
    with pytest.raises(CorruptDatabaseError) as caught:
        ChatStore(db_path)
    assert caught.value.path == db_path
    assert str(db_path) in str(caught.value)
    assert db_path.read_bytes() == content


def test_foreign_sqlite_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    raw = sqlite3.connect(db_path)
    raw.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    raw.commit()
    raw.close()
    with pytest.raises(ForeignDatabaseError, match="invoices"):
        ChatStore(db_path)
    raw = sqlite3.connect(db_path)
    try:
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        raw.close()
    assert tables == {"invoices"}


def test_folder_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="folder"):
        ChatStore(tmp_path)


def test_empty_file_becomes_a_new_history(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.touch()
    with ChatStore(db_path) as store:
        assert store.list_chats() == []


def test_damaged_pages_raise_only_history_errors(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    chat_ids = write_damaged_history(db_path)
    outcomes: dict[str, int] = {"read": 0, "HistoryError": 0}
    with ChatStore(db_path) as store:
        calls = [lambda cid=chat_id: store.get_chat(cid) for chat_id in chat_ids]
        calls += [store.list_chats, lambda: store.search("lorem"), lambda: store.export_markdown(chat_ids[-1])]
        for call in calls:
            try:
                call()
            except HistoryError:  # anything else (sqlite3.DatabaseError, ValueError, ...) fails the test
                outcomes["HistoryError"] += 1
            else:
                outcomes["read"] += 1
        # The damage is real (some reads fail) and contained (the rest still read).
        assert outcomes["HistoryError"] >= 3 and outcomes["read"] >= 20, outcomes
        # The store stays usable for writes elsewhere in the file after failed reads.
        store.rename_chat(chat_ids[0], "still writable")
