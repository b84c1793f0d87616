"""Progress events, speed/ETA, pause/cancel signalling, and the tqdm class that bridges the hub client's bars.

Everything here runs on the download worker thread; the Qt side receives the events through a thread-safe
callback (``loop.call_soon_threadsafe``) and never shares objects with the worker beyond these frozen events.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from tqdm.auto import tqdm

from gpt_oss_desktop.app.downloads.errors import StopReason, TransferStopped

Phase = Literal["download", "verify"]
Clock = Callable[[], float]

# A bar redraw costs the GUI far more than an event; 10 updates a second is smooth enough.
MIN_EVENT_INTERVAL = 0.1
SPEED_WINDOW_SECONDS = 5.0


@dataclass(frozen=True)
class Progress:
    """Bytes done of the current file and of the whole phase, with speed and ETA once they are known."""

    phase: Phase
    file: str
    file_done: int
    file_total: int
    done: int
    total: int
    bytes_per_second: float | None
    eta_seconds: float | None


@dataclass(frozen=True)
class Retrying:
    """A transient error; the transfer starts again (resuming) after ``delay`` seconds."""

    file: str
    attempt: int
    max_attempts: int
    delay: float
    reason: str


@dataclass(frozen=True)
class Refetching:
    """A file failed verification; it was deleted and is being fetched again."""

    file: str
    reason: str


@dataclass(frozen=True)
class StageChanged:
    stage: Literal["planning", "downloading", "verifying", "installing", "done"]
    detail: str = ""


DownloadEvent = Progress | Retrying | Refetching | StageChanged
Listener = Callable[[DownloadEvent], None]


class StopSignal:
    """Set from any thread; the worker checks it between chunks and while waiting to retry."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._reason: StopReason | None = None

    def request(self, reason: StopReason) -> None:
        # cancel wins over pause: a paused-then-cancelled job must not be reported as paused
        if self._reason != "cancel":
            self._reason = reason
        self._event.set()

    def clear(self) -> None:
        self._reason = None
        self._event.clear()

    @property
    def reason(self) -> StopReason | None:
        return self._reason

    def check(self) -> None:
        if self._reason is not None:
            raise TransferStopped(self._reason)

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``; raise :class:`TransferStopped` at once if a stop is requested."""
        self._event.wait(seconds)
        self.check()


class ProgressTracker:
    """Counts bytes of one phase; speed over the last few seconds (bytes found on disk do not count as speed)."""

    def __init__(
        self,
        phase: Phase,
        total: int,
        listener: Listener | None,
        clock: Clock = time.monotonic,
        min_interval: float = MIN_EVENT_INTERVAL,
    ) -> None:
        self.phase: Phase = phase
        self.total = total
        self.done = 0
        self.file = ""
        self.file_done = 0
        self.file_total = 0
        self._listener = listener
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()
        self._moved = 0  # bytes actually transferred/hashed in this phase (excludes bytes already on disk)
        self._last_event = float("-inf")
        self._min_interval = min_interval

    def start_file(self, file: str, size: int, already: int = 0) -> None:
        self.file, self.file_total, self.file_done = file, size, already
        self.done += already
        self._emit(force=True)

    def add(self, n: int) -> None:
        self.file_done += n
        self.done += n
        self._moved += n
        self._emit()

    def end_file(self) -> None:
        self._emit(force=True)

    def speed(self) -> float | None:
        now = self._clock()
        self._samples.append((now, self._moved))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_SECONDS:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        if now - t0 < 0.5:
            return None  # too little to go on
        return (self._moved - b0) / (now - t0)

    def snapshot(self) -> Progress:
        speed = self.speed()
        eta = (self.total - self.done) / speed if speed else None
        return Progress(self.phase, self.file, self.file_done, self.file_total, self.done, self.total, speed, eta)

    def _emit(self, force: bool = False) -> None:
        if self._listener is None:
            return
        now = self._clock()
        if force or now - self._last_event >= self._min_interval:
            self._last_event = now
            self._listener(self.snapshot())


def bridge_bar_class(on_bytes: Callable[[int], None]) -> type[tqdm]:
    """A ``tqdm_class`` for huggingface_hub whose bars draw nothing and hand each update to ``on_bytes``.

    ``on_bytes`` may raise (:class:`TransferStopped`): http_get calls ``update`` before writing each chunk, so the
    transfer stops without writing it and the partial file stays consistent.
    """

    class BridgeBar(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # no terminal output: the app draws the bars
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            on_bytes(int(n or 0))
            return None

    return BridgeBar
