from __future__ import annotations

import pytest

from gpt_oss_desktop.engine.server.stop_sequences import StopMatcher


def run(stops: list[str], pieces: list[str]) -> tuple[str, bool]:
    matcher = StopMatcher(stops)
    shown = "".join(matcher.feed(p) for p in pieces) + matcher.flush()
    return shown, matcher.stopped


@pytest.mark.parametrize(
    ("stops", "pieces", "shown", "stopped"),
    [
        ([], ["a", "b"], "ab", False),
        (["END"], ["hello ", "world"], "hello world", False),
        (["END"], ["hello E", "N", "D and more"], "hello ", True),  # split across three deltas
        (["END"], ["hello EN", "X"], "hello ENX", False),  # a partial match that fails is shown in full
        (["END"], ["ENDING"], "", True),
        (["yz", "z"], ["axyz"], "ax", True),  # the earliest match wins
        (["ab", "abc"], ["zab"], "z", True),
        (["\n\n"], ["one\n", "\ntwo"], "one", True),
        (["END"], ["E"], "E", False),  # held at the end, then flushed
    ],
)
def test_stop_sequences(stops: list[str], pieces: list[str], shown: str, stopped: bool) -> None:
    assert run(stops, pieces) == (shown, stopped)


def test_nothing_of_a_stop_sequence_is_shown_before_it_is_decided() -> None:
    matcher = StopMatcher(["STOP"])
    assert matcher.feed("go ST") == "go "
    assert matcher.feed("O") == ""
    assert matcher.feed("P!") == "" and matcher.stopped
    assert matcher.feed("more") == "" and matcher.flush() == ""
