"""Shared measurement helpers for the benchmarks (timing, peak RSS, a fixed random prompt)."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import torch

T = TypeVar("T")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def current_rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * resource.getpagesize()


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` and return its result and wall seconds."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def random_prompt(length: int, vocab_size: int, seed: int = 0) -> list[int]:
    """Deterministic ordinary-token ids (below the harmony special range) for prefill measurements."""
    generator = torch.Generator().manual_seed(seed)
    high = min(vocab_size, 199998)
    return [int(t) for t in torch.randint(0, high, (length,), generator=generator).tolist()]
