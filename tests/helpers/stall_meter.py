"""Measures how long the Qt event loop stalls: what a user feels as a frozen window."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QTimer


class StallMeter:
    """Ticks every 5 ms on the GUI thread and records the longest gap between ticks (an event-loop stall)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.ticks = 0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(5)
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now
        self.ticks += 1

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()


def stall_measured_twice_if_over(measure: Callable[[], float], limit_s: float) -> float:
    """The longest stall of ``measure()`` (one run of a scenario under a :class:`StallMeter`), run a second time only
    when the first is over ``limit_s``; returns the last run's stall.

    Why a second run: the machines that run these tests share two cores with other jobs, and one preemption of the
    GUI thread at the wrong moment reads as a stall (a 64 ms one failed a CI run once). A stall the code under test
    causes, by blocking the GUI thread or holding the GIL, happens in every run, so the second run still fails.
    """
    first = measure()
    if first < limit_s:
        return first
    return measure()
