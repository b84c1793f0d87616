"""Run Python's cyclic garbage collector on the GUI thread only.

Python collects cycles in whichever thread happens to allocate when a generation fills up, and the engine thread
allocates all the time. When such a collection frees a Qt object (a widget or timer caught in a reference cycle),
its C++ destructor runs on the engine thread, Qt cannot unregister its timers from there ("QObject::~QObject: Timers
cannot be stopped from another thread"), and the GUI thread later delivers a timer event to freed memory: a
segfault far from the cause (seen in this project's tests). So automatic collection is switched off while the app
runs, and this object collects on the GUI thread instead, from a timer, whenever a generation has filled up.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QObject, QTimer

logger = logging.getLogger(__name__)

CHECK_INTERVAL_MS = 500


class GuiThreadGarbageCollector(QObject):
    """Disables automatic ``gc`` and does the same work from a GUI-thread timer (create it on the GUI thread)."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self._thresholds = gc.get_threshold()
        self._was_enabled = gc.isenabled()
        gc.disable()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    def check(self) -> None:
        """Collect the oldest generation whose allocation count passed its threshold (what gc would have done)."""
        counts = gc.get_count()
        for generation in (2, 1, 0):
            if counts[generation] > self._thresholds[generation]:
                gc.collect(generation)
                return

    def stop(self) -> None:
        """Collect everything now, on this thread, and give automatic collection back."""
        self._timer.stop()
        gc.collect()
        if self._was_enabled:
            gc.enable()
