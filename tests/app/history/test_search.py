"""Search over titles and content, with the FTS5 index and with the scanning fallback."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from gpt_oss_desktop.app.history import ChatStore, SearchCancelledError, SearchHit
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
