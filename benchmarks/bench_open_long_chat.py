"""Opening a saved chat with a long answer and reasoning: how long the window freezes; prints JSON.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_open_long_chat.py [--sizes-mb 0.15 1 10]

For each size one chat holds an answer of that many MB (Markdown on every line: emphasis, code, a link) and as much
reasoning (one short line repeated, as a model stuck in a loop writes it). The chat is opened from the event loop,
as a click in the sidebar does, while a 5 ms timer measures the longest gap between its ticks (``longest_stall_ms``:
what a user feels as a frozen window) until the answer is on screen (``shown_ms``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.chat.chat_view import AssistantMessage
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.kernels.cpu_build import cpu_model_name

_ANSWER_LINE = "Four. *Really* four; see `2 + 2` and [why](https://example.org).\n\n"
_REASONING_LINE = "I should check the sum again.\n"


def _open(app: QApplication, window: MainWindow, chat_id: int) -> tuple[float, float]:
    longest = 0.0
    last = time.perf_counter()

    def tick() -> None:
        nonlocal longest, last
        now = time.perf_counter()
        longest = max(longest, now - last)
        last = now

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    started = last = time.perf_counter()
    QTimer.singleShot(0, lambda: window.open_chat(chat_id))

    def shown() -> bool:
        messages = window.chat.messages()
        return (
            window.chat_id == chat_id
            and len(messages) == 2
            and isinstance(messages[1], AssistantMessage)
            and not messages[1].answer.pending
        )

    while not shown():
        app.processEvents()
        time.sleep(0.001)
    shown_s = time.perf_counter() - started
    timer.stop()
    return longest, shown_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", type=float, nargs="+", default=[0.15, 1.0, 10.0])
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    folder = Path(tempfile.mkdtemp(prefix="bench-open-"))
    store = ChatStore(folder / "history.sqlite3")
    backend = LocalEngine()  # no model is loaded: opening a saved chat needs none
    window = MainWindow(backend, QSettings(str(folder / "settings.conf"), QSettings.Format.IniFormat), store=store)
    window.show()
    app.processEvents()
    results = []
    for size in args.sizes_mb:
        chars = int(size * 1_000_000)
        chat = store.create_chat(f"{size} MB")
        store.add_message(chat.id, "user", "What is 2 + 2?")
        answer = (_ANSWER_LINE * (chars // len(_ANSWER_LINE) + 1))[:chars]
        reasoning = (_REASONING_LINE * (chars // len(_REASONING_LINE) + 1))[:chars]
        store.add_message(chat.id, "assistant", answer, analysis=reasoning, effort="medium")
        longest, shown = _open(app, window, chat.id)
        window.new_chat()
        results.append(
            {
                "answer_mb": size,
                "reasoning_mb": size,
                "longest_stall_ms": round(longest * 1000, 1),
                "shown_ms": round(shown * 1000, 1),
            }
        )
    window.close()
    backend.close()
    store.close()
    sys.stdout.write(json.dumps({"cpu_model": cpu_model_name(), "cases": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
