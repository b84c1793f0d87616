"""Search over titles and content, with the FTS5 index and with the scanning fallback."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gpt_oss_desktop.app.history import ChatStore

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
