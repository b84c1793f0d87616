"""History search cost on messages that used to freeze the window; prints JSON.

    python benchmarks/bench_history_search.py [--repeat 3]

For each case one chat holds the message; times are the median of ``--repeat`` runs, in milliseconds:

- ``search_fts_ms`` / ``search_scan_ms``: ChatStore.search with the FTS5 index and with the scanning fallback
  (snippets cut from the first 100,000 characters, at most 8 marks);
- ``old_fts_snippet_ms``: the query the store ran before (FTS5 snippet() over the whole message), for the cases
  where it ends within seconds; the issue measured 34.6 s for 100 KB of matches, and 10 MB never finished;
- ``cancel_scan_20x1MB_ms``: from cancelling a HistorySearcher search to its SearchCancelledError, in scan mode
  over 20 messages of 1 MB (cancellation is checked between SQLite steps, so one message's scan is the most it waits).

Then the other store calls the GUI makes on large data: get_chat (opening a chat), export_markdown, list_chats.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gpt_oss_desktop.app.history import ChatStore, SearchCancelledError
from gpt_oss_desktop.app.history.search import fts_query, query_terms

# fmt: off
_WORDS = (
    "the", "model", "reads", "a", "prompt", "and", "writes", "an", "answer", "step", "by", "while", "it", "reasons",
    "about", "units", "numbers", "code", "what", "user", "asked", "before", "settles", "on", "one", "reply", "that",
)
# fmt: on


def _prose(chars: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(_WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words)


def _median_ms(call: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _old_snippet_ms(path: Path, query: str, repeat: int) -> float:
    """The FTS5 snippet() query of the store before this change, on a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        sql = (
            "SELECT m.chat_id, m.id, snippet(messages_fts, -1, '[', ']', '…', 12) FROM messages_fts "
            "JOIN messages m ON m.id = messages_fts.rowid WHERE messages_fts MATCH ? ORDER BY rank LIMIT 2000"
        )
        match = fts_query(query_terms(query))
        return _median_ms(lambda: conn.execute(sql, (match,)).fetchall(), repeat)
    finally:
        conn.close()


def _cancel_ms(folder: Path, repeat: int) -> float:
    """Scan mode over 20 messages of 1 MB with a query that matches none: cancelled once it has started."""
    with ChatStore(folder / "cancel.sqlite3", use_fts=False) as store:
        for number in range(20):
            chat = store.create_chat(f"chat {number}")
            store.add_message(chat.id, "assistant", _prose(1_000_000, seed=number))
        searcher = store.open_searcher()
        delays = []
        for _ in range(repeat):
            started, cancel = threading.Event(), threading.Event()
            raised: list[float] = []

            def cancelled(started: threading.Event = started, cancel: threading.Event = cancel) -> bool:
                started.set()
                return cancel.is_set()

            def work(cancelled: Callable[[], bool] = cancelled, raised: list[float] = raised) -> None:
                try:
                    searcher.search("absent", cancelled=cancelled)
                except SearchCancelledError:
                    raised.append(time.perf_counter())

            worker = threading.Thread(target=work)
            worker.start()
            started.wait(10)
            cancelled_at = time.perf_counter()
            cancel.set()
            worker.join()
            if raised:
                delays.append((raised[0] - cancelled_at) * 1000)
        searcher.close()
    return round(statistics.median(delays), 2) if delays else float("nan")


CASES: dict[str, tuple[Callable[[], str], str, bool]] = {
    # name: (message text, query, whether the old snippet() query ends within seconds)
    "repetition loop 'the ' * 8192, query 't'": (lambda: "the " * 8192, "t", True),
    "realistic 150 KB answer + reasoning, query 'the'": (lambda: _prose(150_000), "the", True),
    "100 KB where every word matches, query 'word'": (lambda: "word " * 20_000, "word", False),
    "10 MB where every word matches, query 'word'": (lambda: "word " * 2_000_000, "word", False),
    "10 MB prose with one 8192-word loop, query 'capy'": (
        lambda: _prose(5_000_000) + " capybara" * 8192 + _prose(5_000_000, seed=1),
        "capy",
        True,
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, object] = {
        "cpu": platform.processor() or platform.machine(),
        "sqlite": sqlite3.sqlite_version,
        "cases": {},
    }
    cases: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as folder:
        for index, (name, (make_text, query, old_ends)) in enumerate(CASES.items()):
            text = make_text()
            row: dict[str, object] = {"message_chars": len(text)}
            for fts in (True, False):
                path = Path(folder) / f"case{index}-{'fts' if fts else 'scan'}.sqlite3"
                with ChatStore(path, use_fts=fts) as store:
                    chat = store.create_chat(name[:40])
                    store.add_message(chat.id, "assistant", text)
                    key = "search_fts_ms" if fts else "search_scan_ms"
                    row[key] = _median_ms(lambda store=store, query=query: store.search(query), args.repeat)
                    if fts and old_ends:
                        row["old_fts_snippet_ms"] = _old_snippet_ms(path, query, args.repeat)
                    if fts and len(text) > 1_000_000:
                        row["get_chat_ms"] = _median_ms(lambda store=store, c=chat.id: store.get_chat(c), args.repeat)
                        row["export_markdown_ms"] = _median_ms(
                            lambda store=store, c=chat.id: store.export_markdown(c), args.repeat
                        )
            cases[name] = row
        with ChatStore(Path(folder) / "many.sqlite3") as store:
            for number in range(2000):
                store.create_chat(f"chat {number}")
            results["list_chats_2000_ms"] = _median_ms(store.list_chats, args.repeat)
        results["cancel_scan_20x1MB_ms"] = _cancel_ms(Path(folder), args.repeat)
    results["cases"] = cases
    sys.stdout.write(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
