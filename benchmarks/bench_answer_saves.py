"""GUI-thread cost of saving a streaming answer (app/chat/answer_saver.py) into a real SQLite history; prints JSON.

    python benchmarks/bench_answer_saves.py [--repeats 30]

Each progress save rewrites the answer's row (text and reasoning) in one transaction with SQLite's default
synchronous=FULL, so it includes an fsync; the app does one every 2 s while an answer streams, plus one forced save
when the user leaves a chat mid-answer. Measured at answer lengths typical of a short, a long and a very long answer,
with the full-text index on (the app's default) and off.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gpt_oss_desktop.app.chat.answer_saver import AnswerSaver
from gpt_oss_desktop.app.history import ChatStore

_LENGTHS_CHARS = (2_000, 20_000, 100_000)


def _measure(folder: Path, use_fts: bool, chars: int, repeats: int) -> dict[str, float]:
    with ChatStore(folder / f"history-{use_fts}-{chars}.sqlite3", use_fts=use_fts) as store:
        chat = store.create_chat("benchmark")
        store.add_message(chat.id, "user", "Write a long essay.")
        saver = AnswerSaver(store, chat.id, 1, "medium", interval=0.0)
        saver.add_reasoning("Plan the essay. " * 50)
        saver.add_answer("word " * (chars // 5))
        saver.save_progress(force=True)  # the first save inserts the row; later ones update it, as in the app
        samples = []
        for _ in range(repeats):
            saver.add_answer("more ")
            start = time.perf_counter()
            saver.save_progress()
            samples.append(time.perf_counter() - start)
    ms = [s * 1e3 for s in samples]
    return {"median_ms": round(statistics.median(ms), 3), "max_ms": round(max(ms), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for use_fts in (True, False):
            key = "fts_on" if use_fts else "fts_off"
            results[key] = {
                f"{chars}_chars": _measure(Path(scratch), use_fts, chars, args.repeats) for chars in _LENGTHS_CHARS
            }
    report = {"machine": platform.machine(), "progress_save": results}
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
