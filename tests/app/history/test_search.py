"""Search over titles and content, with the FTS5 index and with the scanning fallback."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.history import ChatStore, SearchCancelledError, SearchHit, schema
from gpt_oss_desktop.app.history.search import MAX_MARKS

from .conftest import FakeClock


@pytest.fixture
def searchable(db_path: Path, clock: FakeClock, use_fts: bool) -> ChatStore:
    store = ChatStore(db_path, clock=clock, use_fts=use_fts)
    assert store.fts_enabled == use_fts
    sorting = store.create_chat("Sorting in Python")
    store.add_message(sorting.id, "user", "How do I sort a list of tuples by the second item?")
    store.add_message(
        sorting.id,
        "assistant",
        "Use sorted(items, key=lambda t: t[1]).",
        analysis="The user wants a key function; itemgetter also works.",
        effort="medium",
    )
    weather = store.create_chat("Weather chat")
    store.add_message(weather.id, "user", "Écris un poème sur la PLUIE d'automne.")
    store.create_chat("Empty chat about nothing")
    return store


def titles(store: ChatStore, query: str) -> list[str]:
    return [hit.chat.title for hit in store.search(query)]


def test_title_hit(searchable: ChatStore) -> None:
    hits = searchable.search("python")
    assert [h.chat.title for h in hits] == ["Sorting in Python"]
    assert hits[0].title_match


def test_content_hit_is_case_insensitive_with_snippet(searchable: ChatStore) -> None:
    hits = searchable.search("TUPLES")
    assert [h.chat.title for h in hits] == ["Sorting in Python"]
    hit = hits[0]
    assert not hit.title_match
    assert hit.message_id is not None
    assert "[tuples]" in hit.snippet
    assert len(hit.snippet) < 200


def test_non_ascii_case_folding(searchable: ChatStore) -> None:
    # SQLite's LIKE folds only ASCII; both paths must still match É/é and PLUIE/pluie.
    assert titles(searchable, "écris pluie") == ["Weather chat"]


def test_reasoning_is_searchable(searchable: ChatStore) -> None:
    hits = searchable.search("itemgetter")
    assert [h.chat.title for h in hits] == ["Sorting in Python"]
    assert "[itemgetter]" in hits[0].snippet


def test_all_words_required_and_one_hit_per_chat(searchable: ChatStore) -> None:
    assert titles(searchable, "sort list") == ["Sorting in Python"]
    assert titles(searchable, "sorted poème") == []
    assert titles(searchable, "chat") == ["Empty chat about nothing", "Weather chat"]


def test_custom_markers_and_odd_queries(searchable: ChatStore) -> None:
    hit = searchable.search("second", start="<b>", end="</b>")[0]
    assert "<b>second</b>" in hit.snippet
    assert searchable.search("") == []
    assert searchable.search("  ?! ") == []
    # FTS syntax in user text is inert, not an error.
    assert searchable.search('"unbalanced AND OR NEAR(') == []


def test_deleted_chats_are_not_found_until_undone(searchable: ChatStore) -> None:
    chat_id = searchable.search("tuples")[0].chat.id
    searchable.delete_chat(chat_id)
    assert searchable.search("tuples") == []
    searchable.undo_delete(chat_id)
    assert titles(searchable, "tuples") == ["Sorting in Python"]


def test_search_follows_edits_renames_and_purge(searchable: ChatStore) -> None:
    chat = searchable.search("tuples")[0].chat
    message_id = searchable.search("tuples")[0].message_id
    assert message_id is not None
    searchable.update_message(message_id, text="How do I reverse a dict?")
    assert searchable.search("tuples") == []
    assert titles(searchable, "reverse") == ["Sorting in Python"]
    searchable.rename_chat(chat.id, "Dictionaries")
    assert searchable.search("python") == []
    assert titles(searchable, "dictionaries") == ["Dictionaries"]
    searchable.delete_chat(chat.id)
    searchable.purge()
    assert searchable.search("reverse") == []


def test_fts_index_stays_consistent(db_path: Path, clock: FakeClock) -> None:
    with ChatStore(db_path, clock=clock) as store:
        keep = store.create_chat("kept")
        store.add_message(keep.id, "user", "kept words")
        temp = store.create_chat("temp")
        message = store.add_message(temp.id, "user", "x y z")
        store.update_message(message.id, text="x y z w")
        store.rename_chat(temp.id, "temporary")
        store.delete_chat(temp.id)
        store.purge()  # the cascaded message delete must also leave the index
    raw = sqlite3.connect(db_path)
    try:
        for table in ("chats_fts", "messages_fts"):
            raw.execute(f"INSERT INTO {table} ({table}) VALUES ('integrity-check')")
    finally:
        raw.close()


def test_index_is_rebuilt_after_writes_made_without_it(db_path: Path, clock: FakeClock) -> None:
    with ChatStore(db_path, clock=clock) as indexed:
        indexed.create_chat("indexed")
    # A run without FTS5 (e.g. another machine's SQLite) writes with the triggers gone...
    with ChatStore(db_path, clock=clock, use_fts=False) as scanning:
        chat = scanning.create_chat("written while scanning")
        scanning.add_message(chat.id, "user", "kangaroo")
        assert titles(scanning, "kangaroo") == ["written while scanning"]
    # ...and the next run with FTS5 rebuilds the index so those rows are found.
    with ChatStore(db_path, clock=clock) as again:
        assert again.fts_enabled
        assert titles(again, "kangaroo") == ["written while scanning"]
        assert titles(again, "indexed") == ["indexed"]


def search_or_fail(store: ChatStore, query: str, *, hang_guard_s: float = 60.0) -> list[SearchHit]:
    """``store.search`` on a daemon thread, so that unbounded work fails the test instead of hanging the suite.

    The guard is not a speed bound (benchmarks/bench_history_search.py measures speed); it is far above the bounded
    cost and far below the hours that snippets over every match of a 10 MB message took.
    """
    result: list[list[SearchHit]] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(store.search(query))
        except BaseException as exc:  # handed to the test thread
            failure.append(exc)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(hang_guard_s)
    assert not worker.is_alive(), f"searching {query!r} did not finish in {hang_guard_s} s"
    if failure:
        raise failure[0]
    return result[0]


def test_snippets_of_a_ten_megabyte_message_are_bounded(db_path: Path, clock: FakeClock, use_fts: bool) -> None:
    store = ChatStore(db_path, clock=clock, use_fts=use_fts)
    chat = store.create_chat("Looping")
    store.add_message(chat.id, "assistant", "word " * 2_000_000)  # 10 MB where every word matches
    loop = store.create_chat("Echo")
    store.add_message(loop.id, "assistant", "the " * 8192)  # a real model's repetition loop
    for query in ("word", "w", "t", "the"):
        hits = search_or_fail(store, query)
        assert len(hits) == 1, query
        snippet = hits[0].snippet
        assert len(snippet) < 400
        assert 1 <= snippet.count("[") <= MAX_MARKS
    store.close()


def test_snippet_of_a_match_deep_in_a_huge_message(db_path: Path, clock: FakeClock, use_fts: bool) -> None:
    store = ChatStore(db_path, clock=clock, use_fts=use_fts)
    near = store.create_chat("near")
    store.add_message(near.id, "assistant", "filler " * 1000 + "kangaroo jumps")
    far = store.create_chat("far")
    store.add_message(far.id, "assistant", "padding " * 1_500_000 + "kangaroo jumps")  # 12 MB before the match
    hits = {hit.chat.title: hit for hit in search_or_fail(store, "kangaroo")}
    assert set(hits) == {"near", "far"}  # both found: the index (or scan) covers the whole text
    assert "[kangaroo] jumps" in hits["near"].snippet
    assert hits["far"].snippet.startswith("…padding padding")
    assert hits["far"].snippet.endswith("[kangaroo] jumps")
    store.close()


def snippet_of_only_hit(db_path: Path, clock: FakeClock, answer: str, query: str) -> str:
    """The snippet of the one hit for ``query`` in an FTS5 store whose one chat holds ``answer``."""
    store = ChatStore(db_path, clock=clock)
    try:
        chat = store.create_chat("Chat")
        store.add_message(chat.id, "assistant", answer)
        (hit,) = store.search(query)
        return hit.snippet
    finally:
        store.close()


def test_prefix_matches_start_words_in_snippets(db_path: Path, clock: FakeClock) -> None:
    # FTS5 matches "rod" only at the start of a word; the snippet must show that word, not "produce" before it.
    snippet = snippet_of_only_hit(db_path, clock, "Farms produce grain. " * 20 + "Capybaras are rodents.", "rod")
    assert "[rod]ents" in snippet
    assert "p[rod]uce" not in snippet


def test_snippet_matches_without_accents(db_path: Path, clock: FakeClock) -> None:
    # FTS5 (remove_diacritics) finds "cafe" in "café"; the snippet must show that place, not the message's start.
    answer = "Une promenade en ville. " * 20 + "Le Café de Flore ouvre tôt."
    assert "Le [Café] de Flore" in snippet_of_only_hit(db_path, clock, answer, "cafe")


def test_searcher_cancels_and_sees_new_commits(db_path: Path, clock: FakeClock, use_fts: bool) -> None:
    store = ChatStore(db_path, clock=clock, use_fts=use_fts)
    searcher = store.open_searcher()
    try:
        assert searcher.search("kangaroo") == []
        chat = store.create_chat("Australia")
        store.add_message(chat.id, "user", "kangaroo " * 100_000)
        assert [hit.chat.id for hit in searcher.search("kangaroo")] == [chat.id]
        with pytest.raises(SearchCancelledError):
            searcher.search("kangaroo", cancelled=lambda: True)
        assert [hit.chat.id for hit in searcher.search("kang")] == [chat.id]  # usable after a cancel
    finally:
        searcher.close()
        store.close()


def test_a_scan_stops_inside_a_huge_message_when_cancelled(db_path: Path, clock: FakeClock) -> None:
    # Without FTS5 one message is one call of the scanning function: cancellation must reach inside it, not wait
    # for SQLite's next step (a handful of steps for a few huge rows).
    store = ChatStore(db_path, clock=clock, use_fts=False)
    for number in range(3):
        chat = store.create_chat(f"chat {number}")
        store.add_message(chat.id, "assistant", "lorem ipsum " * 1_000_000)  # 12 MB each, no match
    searcher = store.open_searcher()
    calls = 0

    def cancelled() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3  # cancelled right after the search has started

    try:
        with pytest.raises(SearchCancelledError):
            searcher.search("absent", cancelled=cancelled)
        assert calls < 20  # asked while scanning, and stopped at the first "yes"
    finally:
        searcher.close()
        store.close()


# --- tool calls ---------------------------------------------------------------------------------------------------

WEATHER_CALL: dict[str, Any] = {
    "recipient": "functions.get_weather",
    "arguments": '{"city": "Reykjavík"}',
    "channel": "commentary",
    "status": "ok",
    "output": "Sleet, 2 °C, wind from the northwest at 14 m/s",
}
PYTHON_CALL: dict[str, Any] = {
    "recipient": "python",
    "arguments": "print(sum(range(10)), 'quokka')",
    "channel": "analysis",
    "status": "ok",
    "output": "45 quokka\n",
}


def chat_with_tool_calls(store: ChatStore, title: str = "Trip planning") -> tuple[int, int]:
    """A chat whose answer called the weather tool and python; its id and the answer's."""
    chat = store.create_chat(title)
    store.add_message(chat.id, "user", "What should I pack?")
    answer = store.add_message(
        chat.id,
        "assistant",
        "Pack a warm coat.",
        analysis="Look up the forecast first.",
        effort="low",
        tool_calls=[WEATHER_CALL, PYTHON_CALL],
    )
    return chat.id, answer.id


def indexed(path: Path, query: str) -> int:
    """Messages the index itself (not the search, which leaves out rows that are gone) holds for ``query``."""
    raw = sqlite3.connect(path)
    try:
        return int(raw.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (query,)).fetchone()[0])
    finally:
        raw.close()


def assert_index_matches_tables(path: Path) -> None:
    """The message index holds exactly what a rebuild from the tables gives: every term at every position of every
    message and column. A trigger that indexed (or took out) other text than the index reads on a rebuild would
    leave a difference, and FTS5's own integrity-check does not compare with the content here (SQLite 3.40)."""
    raw = sqlite3.connect(path, isolation_level=None)
    try:
        raw.execute("CREATE VIRTUAL TABLE temp.message_terms USING fts5vocab(main, messages_fts, instance)")
        listing = "SELECT term, doc, col, offset FROM temp.message_terms ORDER BY term, doc, col, offset"
        kept = raw.execute(listing).fetchall()
        raw.execute("BEGIN")
        raw.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
        rebuilt = raw.execute(listing).fetchall()
        raw.execute("ROLLBACK")  # the file stays as the store left it
    finally:
        raw.close()
    assert kept == rebuilt
    assert any(column == "tool_calls" for _, _, column, _ in kept)  # a comparison of something, not of nothing


def test_tool_call_names_arguments_and_results_are_found(db_path: Path, clock: FakeClock, use_fts: bool) -> None:
    store = ChatStore(db_path, clock=clock, use_fts=use_fts)
    try:
        other = store.create_chat("Other")
        store.add_message(other.id, "assistant", "No tools were called here.")
        chat_id, answer_id = chat_with_tool_calls(store)
        # A result (function and python), an argument, a tool's name: each found, pointing at the answer.
        for query in ("sleet", "northwest", "quokka", "Reykjavík", "get_weather", "weather"):
            hits = search_or_fail(store, query)
            assert [(hit.chat.id, hit.message_id, hit.title_match) for hit in hits] == [(chat_id, answer_id, False)]
        assert "[Sleet], 2 °C" in search_or_fail(store, "sleet")[0].snippet
        assert "[quokka]" in search_or_fail(store, "quokka")[0].snippet
        # All words in one message: the answer's text and its tool result together, as one message's words.
        assert titles(store, "coat sleet") == ["Trip planning"]
        # The namespace every function tool shares is not a word of the call: it would find every such chat.
        assert store.search("functions") == []
    finally:
        store.close()


def test_tool_calls_leave_the_index_with_their_edit_or_their_chat(
    db_path: Path, clock: FakeClock, use_fts: bool
) -> None:
    with ChatStore(db_path, clock=clock, use_fts=use_fts) as store:
        kept_id, kept_answer = chat_with_tool_calls(store, "Kept")
        gone_id, gone_answer = chat_with_tool_calls(store, "Gone")
        store.update_message(gone_answer, tool_calls=[{"recipient": "python", "arguments": "1", "output": "wombat"}])
        store.update_message(kept_answer, tool_calls=[WEATHER_CALL])  # the python call taken out
        assert titles(store, "wombat") == ["Gone"]
        assert titles(store, "sleet") == ["Kept"]
        assert store.search("quokka") == []
        store.delete_chat(gone_id)
        assert store.search("wombat") == []
        store.undo_delete(gone_id)
        assert titles(store, "wombat") == ["Gone"]
        store.delete_chat(gone_id)
        store.purge()
        assert store.search("wombat") == []
        assert [hit.chat.id for hit in store.search("sleet")] == [kept_id]
    if use_fts:
        assert (indexed(db_path, "wombat"), indexed(db_path, "quokka"), indexed(db_path, "sleet")) == (0, 0, 1)
        assert_index_matches_tables(db_path)


def test_snippet_of_a_match_deep_in_a_tool_result(db_path: Path, clock: FakeClock, use_fts: bool) -> None:
    with ChatStore(db_path, clock=clock, use_fts=use_fts) as store:
        chat = store.create_chat("Logs")
        log = {"recipient": "python", "arguments": "run()", "output": "padding " * 20_000 + "kangaroo jumps"}
        answer = store.add_message(chat.id, "assistant", "Done.", tool_calls=[log])
        (hit,) = search_or_fail(store, "kangaroo")
        assert hit.message_id == answer.id
        assert hit.snippet.startswith("…padding padding") and hit.snippet.endswith("[kangaroo] jumps")


# The index as the versions before tool calls were searched built it (answer and reasoning only), statement by
# statement as they created it.
_OLD_INDEX = (
    "CREATE VIRTUAL TABLE chats_fts USING fts5("
    "title, content = 'chats', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "text, analysis, content = 'messages', content_rowid = 'id', tokenize = 'unicode61 remove_diacritics 2')",
    "CREATE TRIGGER chats_fts_ai AFTER INSERT ON chats BEGIN "
    "INSERT INTO chats_fts (rowid, title) VALUES (new.id, new.title); END",
    "CREATE TRIGGER chats_fts_ad AFTER DELETE ON chats BEGIN "
    "INSERT INTO chats_fts (chats_fts, rowid, title) VALUES ('delete', old.id, old.title); END",
    "CREATE TRIGGER chats_fts_au AFTER UPDATE OF title ON chats BEGIN "
    "INSERT INTO chats_fts (chats_fts, rowid, title) VALUES ('delete', old.id, old.title); "
    "INSERT INTO chats_fts (rowid, title) VALUES (new.id, new.title); END",
    "CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts (rowid, text, analysis) VALUES (new.id, new.text, new.analysis); END",
    "CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, text, analysis) "
    "VALUES ('delete', old.id, old.text, old.analysis); END",
    "CREATE TRIGGER messages_fts_au AFTER UPDATE OF text, analysis ON messages BEGIN "
    "INSERT INTO messages_fts (messages_fts, rowid, text, analysis) "
    "VALUES ('delete', old.id, old.text, old.analysis); "
    "INSERT INTO messages_fts (rowid, text, analysis) VALUES (new.id, new.text, new.analysis); END",
)


def write_history_with_the_old_index(path: Path) -> None:
    """A v4 history as the version before tool-call search left it: its migrations, its index (kept by its own
    triggers), and an answer with tool calls, all written by plain SQL."""
    path.parent.mkdir(parents=True)
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    schema.create_migrations_table(raw)
    for migration in schema.MIGRATIONS[:4]:
        migration.apply(raw)
        raw.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (migration.version, migration.description))
    for statement in _OLD_INDEX:
        raw.execute(statement)
    raw.execute("INSERT INTO chats (id, title, created_at, updated_at) VALUES (1, 'Trip planning', 0, 10)")
    raw.execute(
        "INSERT INTO messages (chat_id, position, role, text, created_at) VALUES (1, 0, 'user', 'What to pack?', 1)"
    )
    raw.execute(
        "INSERT INTO messages (chat_id, position, role, text, effort, created_at, tool_calls_json) "
        "VALUES (1, 1, 'assistant', 'Pack a warm coat.', 'low', 2, ?)",
        (json.dumps([WEATHER_CALL]),),
    )
    raw.execute("COMMIT")
    raw.close()


def builds(caplog: pytest.LogCaptureFixture) -> int:
    return sum(record.getMessage() == "building the chat history search index" for record in caplog.records)


def test_an_index_without_tool_calls_gets_them_on_open(
    db_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    write_history_with_the_old_index(db_path)
    caplog.set_level(logging.INFO, logger=schema.__name__)
    with ChatStore(db_path, clock=clock) as store:
        assert store.fts_enabled
        assert [(hit.chat.id, hit.message_id) for hit in store.search("sleet")] == [(1, 2)]
        assert titles(store, "coat") == ["Trip planning"]  # what the old index held is found as before
    assert builds(caplog) == 1
    assert_index_matches_tables(db_path)
    with ChatStore(db_path, clock=clock) as again:  # rebuilt once: the next start trusts the index
        assert titles(again, "sleet") == ["Trip planning"]
    assert builds(caplog) == 1
    # A run without FTS5 scans the calls too, and what it writes is indexed when FTS5 is back.
    with ChatStore(db_path, clock=clock, use_fts=False) as scanning:
        assert titles(scanning, "sleet") == ["Trip planning"]
        chat_id, _ = chat_with_tool_calls(scanning, "Written while scanning")
    with ChatStore(db_path, clock=clock) as indexing:
        assert [hit.chat.id for hit in indexing.search("quokka")] == [chat_id]
    assert builds(caplog) == 2
    assert_index_matches_tables(db_path)


def test_a_file_whose_index_cannot_be_rebuilt_opens_and_scans(
    db_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # An old index to rebuild, and the messages' only page damaged (as a failing disk would): the rebuild, which
    # reads every message, fails, and the rest of the history must still open.
    write_history_with_the_old_index(db_path)
    raw = sqlite3.connect(db_path)
    (root,) = raw.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'").fetchone()
    (page_size,) = raw.execute("PRAGMA page_size").fetchone()
    raw.close()
    data = bytearray(db_path.read_bytes())
    data[(root - 1) * page_size] = 0xFF  # not a b-tree page type
    db_path.write_bytes(bytes(data))
    with ChatStore(db_path, clock=clock) as store:
        assert not store.fts_enabled
        assert [chat.title for chat in store.list_chats()] == ["Trip planning"]
    assert "cannot build the search index" in caplog.text
