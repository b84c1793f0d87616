"""Measures how long the Qt event loop stalls: what a user feels as a frozen window."""

from __future__ import annotations

import time

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
