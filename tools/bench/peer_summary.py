"""Summaries of alternating benchmark rounds: per-side median and min-max of each metric, and engine/peer ratios.

Rounds alternate (engine, peer, engine, peer, ...) so that slow drift in the machine's load hits both sides alike; the
median is the headline (one preempted round on a shared machine moves it little), min-max shows the spread.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# Metric name -> True when higher is better (speeds) or False (memory); ratios are always engine / peer.
METRICS: dict[str, bool] = {"prefill_tok_s": True, "decode_tok_s": True, "peak_rss_bytes": False}


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and the samples themselves (in round order)."""
    if not values:
        raise ValueError("no samples")
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "samples": [round(v, 3) for v in values],
    }


def side_summary(rounds: Sequence[Mapping[str, Any]], metrics: Sequence[str] = tuple(METRICS)) -> dict[str, Any]:
    """Each metric's spread over one side's rounds (a metric missing from any round is an error, not a gap)."""
    return {name: spread([float(r[name]) for r in rounds]) for name in metrics}


def ratios(
    engine: Mapping[str, Any], peer: Mapping[str, Any], metrics: Sequence[str] = tuple(METRICS), *, best: bool = False
) -> dict[str, Any]:
    """engine / peer of the medians (or, with ``best``, of each side's best round: the highest speed, the lowest RSS,
    i.e. minimum-of-N time, the figure least disturbed by other work on a shared machine). Above 1 means the engine
    is faster (speeds) or uses more memory (RSS)."""
    out: dict[str, Any] = {}
    for name in metrics:
        stat = ("max" if METRICS.get(name, True) else "min") if best else "median"
        denominator = float(peer[name][stat])
        out[name] = round(float(engine[name][stat]) / denominator, 3) if denominator else None
    return out


def interleave(sides: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """The run order: every side once per round, in the given order (A B A B ... for two sides)."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    return [(r, side) for r in range(rounds) for side in sides]
