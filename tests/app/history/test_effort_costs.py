"""effort_costs on a real history file: medians of the recent answers per effort, and which answers do not count."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.history import ChatStore, HistoryError
from gpt_oss_desktop.app.history.effort_costs import EffortCost, effort_costs


def _answer(store: ChatStore, chat_id: int, effort: str, seconds: float, tokens: int, **extra: Any) -> None:
    stats: dict[str, Any] = {"finish_reason": "stop", "thinking_s": seconds, "reasoning_tokens": tokens, **extra}
    store.add_message(chat_id, "user", "q")
    store.add_message(chat_id, "assistant", "a", analysis="t", effort=effort, stats=stats)


def test_medians_per_effort_of_one_model(store: ChatStore) -> None:
    chat = store.create_chat("c", model="gpt-oss-20b").id
    for seconds, tokens in ((2.0, 100), (4.0, 300), (30.0, 200)):
        _answer(store, chat, "low", seconds, tokens)
    _answer(store, chat, "high", 61.5, 2400)
    other = store.create_chat("o", model="gpt-oss-120b").id
    _answer(store, other, "low", 99.0, 9999)
    costs = effort_costs(store.path, "gpt-oss-20b")
    assert costs == {"low": EffortCost(3, 4.0, 200), "high": EffortCost(1, 61.5, 2400)}
    assert effort_costs(store.path, "gpt-oss-120b") == {"low": EffortCost(1, 99.0, 9999)}
    assert effort_costs(store.path, "never used") == {}


def test_only_the_most_recent_answers_count(store: ChatStore) -> None:
    chat = store.create_chat("c", model="m").id
    for seconds in (100.0, 100.0, 1.0, 2.0, 3.0):  # the machine got faster: the two old answers drop out
        _answer(store, chat, "medium", seconds, 10)
    assert effort_costs(store.path, "m", recent=3) == {"medium": EffortCost(3, 2.0, 10)}


@pytest.mark.parametrize(
    "extra",
    [
        {"finish_reason": "length"},  # cut off by max tokens
        {"finish_reason": "cancelled"},
        {"tool_calls": 2, "tool_s": 40.0},  # the tools' time is in its thinking time
        {"reasoning_cut": True},  # a thinking budget cut it
        {"thinking_s": None},  # no answer started
        {"reasoning_tokens": "many"},  # a damaged record
    ],
)
def test_answers_that_say_nothing_about_the_effort_do_not_count(store: ChatStore, extra: dict[str, Any]) -> None:
    chat = store.create_chat("c", model="m").id
    _answer(store, chat, "low", 5.0, 50)
    _answer(store, chat, "low", 500.0, 5000, **extra)
    assert effort_costs(store.path, "m") == {"low": EffortCost(1, 5.0, 50)}


def test_comparisons_incomplete_answers_and_the_trash_do_not_count(store: ChatStore) -> None:
    kept = store.create_chat("kept", model="m").id
    _answer(store, kept, "high", 10.0, 100)
    comparison = store.create_chat("cmp", kind="comparison", model="m").id
    _answer(store, comparison, "high", 90.0, 900)
    trashed = store.create_chat("gone", model="m").id
    _answer(store, trashed, "high", 80.0, 800)
    store.delete_chat(trashed)
    store.add_message(kept, "assistant", "half", effort="high", complete=False, stats={"finish_reason": "stop",
                      "thinking_s": 70.0, "reasoning_tokens": 700})  # fmt: skip
    assert effort_costs(store.path, "m") == {"high": EffortCost(1, 10.0, 100)}


def test_a_missing_file_is_a_history_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError):
        effort_costs(tmp_path / "none.sqlite3", "m")


def test_the_file_is_only_read(store: ChatStore) -> None:
    chat = store.create_chat("c", model="m").id
    _answer(store, chat, "low", 1.0, 1)
    before = store.path.stat().st_mtime_ns, sorted(p.name for p in store.path.parent.iterdir())
    effort_costs(store.path, "m")
    assert (store.path.stat().st_mtime_ns, sorted(p.name for p in store.path.parent.iterdir())) == before
