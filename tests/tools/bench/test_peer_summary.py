"""tools/bench/peer_summary.py: medians, spreads, engine/peer ratios and the alternating run order."""

from __future__ import annotations

import pytest

from tools.bench.peer_summary import interleave, ratios, side_summary, spread


def test_spread_keeps_round_order_and_takes_the_median() -> None:
    assert spread([3.0, 1.0, 2.0]) == {"median": 2.0, "min": 1.0, "max": 3.0, "samples": [3.0, 1.0, 2.0]}
    assert spread([4.0, 1.0, 2.0, 10.0])["median"] == 3.0
    with pytest.raises(ValueError):
        spread([])


def _round(prefill: float, decode: float, rss: int) -> dict[str, float]:
    return {"prefill_tok_s": prefill, "decode_tok_s": decode, "peak_rss_bytes": rss}


def test_ratios_are_engine_over_peer_of_the_medians() -> None:
    engine = side_summary([_round(100, 10, 4000), _round(80, 12, 4200), _round(120, 11, 4100)])
    peer = side_summary([_round(50, 20, 2000), _round(40, 22, 2100), _round(60, 21, 2050)])
    assert engine["prefill_tok_s"]["median"] == 100 and peer["decode_tok_s"]["median"] == 21
    assert ratios(engine, peer) == {"prefill_tok_s": 2.0, "decode_tok_s": round(11 / 21, 3), "peak_rss_bytes": 2.0}
    # Best rounds: the fastest speeds and the smallest peak RSS of each side.
    assert ratios(engine, peer, best=True) == {"prefill_tok_s": 2.0, "decode_tok_s": round(12 / 22, 3),
                                               "peak_rss_bytes": 2.0}  # fmt: skip


def test_a_missing_metric_is_an_error() -> None:
    with pytest.raises(KeyError):
        side_summary([{"prefill_tok_s": 1.0, "decode_tok_s": 1.0}])


def test_rounds_alternate_the_sides() -> None:
    assert interleave(["a", "b"], 3) == [(0, "a"), (0, "b"), (1, "a"), (1, "b"), (2, "a"), (2, "b")]
    with pytest.raises(ValueError):
        interleave(["a"], 0)
