"""The fused CPU kernels prepared at app start, off the GUI thread, and what the status bar says meanwhile.

On the first run of an install the kernels' C++ compiles (about ten seconds here, longer on slow machines). Done at
start in the background, the build no longer hides inside the first answer's "Thinking…": the status bar shows
"Preparing the CPU kernels — first run only" with a busy indicator, a question sent meanwhile waits for it before
its clock starts (so the wait is counted neither as thinking nor as time to the first token), and a failed build
leaves a notice that the slower torch path is in use. :mod:`gpt_oss_desktop.kernels.cpu_build` does the work.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Final

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QAbstractButton, QHBoxLayout, QLabel, QProgressBar, QStatusBar, QWidget

from gpt_oss_desktop.kernels.cpu_kernel_status import KernelState, KernelStatus  # torch-free

logger = logging.getLogger(__name__)

PREPARING_TEXT: Final = "Preparing the CPU kernels — first run only"
WAITING_TEXT: Final = "Waiting for the CPU kernels…"
_REASON_MAX_CHARS: Final = 90  # a compiler's error can be long: the label shows its start, the tooltip all of it

PrepareFunction = Callable[[Callable[[str], None]], KernelStatus]
"""``prepare(on_progress) -> KernelStatus``, like :func:`gpt_oss_desktop.kernels.cpu_build.prepare`: blocking, run on
a worker thread; ``on_progress(text)`` is called (from that thread) only when a build starts."""


def _prepare_cpu_kernels(on_progress: Callable[[str], None]) -> KernelStatus:
    from gpt_oss_desktop.kernels import cpu_build  # imports torch: on the worker thread, after the window is up

    return cpu_build.prepare(on_progress)


def failure_notice(reason: str | None) -> str:
    """The status bar's words for a failed build: the reason's first line, shortened to fit."""
    lines = (reason or "").strip().splitlines()
    first_line = lines[0] if lines else "unknown error"
    if len(first_line) > _REASON_MAX_CHARS:
        first_line = first_line[: _REASON_MAX_CHARS - 1] + "…"
    return f"CPU kernels could not be built: {first_line}; using the slower fallback"


class KernelPreparation(QObject):
    """Runs ``prepare`` once on a worker thread and lets the GUI wait for it without blocking.

    Signals (on the GUI thread):
        building(str): a build started (the first run of this install on this CPU); not sent when a cached build
            loads.
        finished(KernelStatus): the KernelStatus, whatever it is.
    """

    building = Signal(str)
    finished = Signal(KernelStatus)

    def __init__(self, prepare: PrepareFunction | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._prepare: PrepareFunction = prepare or _prepare_cpu_kernels
        self._future: asyncio.Future[KernelStatus] | None = None
        self._status: KernelStatus | None = None
        self._building = False

    @property
    def status(self) -> KernelStatus | None:
        """The outcome, once finished."""
        return self._status

    @property
    def is_building(self) -> bool:
        return self._building

    def start(self) -> None:
        """Start preparing (once; later calls do nothing). Needs the app's asyncio loop (qasync) to be set."""
        if self._future is not None:
            return
        loop = asyncio.get_event_loop()
        self._future = loop.create_future()

        def on_progress(text: str) -> None:
            self._post(loop, self._on_building, text)

        def work() -> None:
            try:
                status = self._prepare(on_progress)
            except Exception as exc:  # prepare() should not raise; if one does, the app still answers on torch
                logger.exception("preparing the CPU kernels failed")
                status = KernelStatus(KernelState.FAILED, None, 0.0, f"{type(exc).__name__}: {exc}")
            self._post(loop, self._on_finished, status)

        threading.Thread(target=work, name="gpt-oss-cpu-kernels", daemon=True).start()

    async def wait_ready(self) -> KernelStatus:
        """The status, once preparation is over (starts it if nobody did)."""
        self.start()
        assert self._future is not None
        return await asyncio.shield(self._future)

    @staticmethod
    def _post(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object) -> None:
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the app is gone and nobody is waiting any more
            logger.debug("CPU kernel preparation finished after the event loop closed")

    def _on_building(self, text: str) -> None:
        if self._status is None:
            self._building = True
            logger.info("%s", text)
            self.building.emit(text)

    def _on_finished(self, status: KernelStatus) -> None:
        self._building = False
        self._status = status
        if self._future is not None and not self._future.done():
            self._future.set_result(status)
        self.finished.emit(status)


class KernelStatusIndicator(QWidget):
    """Status-bar widget: "Preparing the CPU kernels — first run only" with a busy bar while a build runs, the
    failure notice if it fails, nothing otherwise."""

    def __init__(self, preparation: KernelPreparation, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel(self)
        self.label.setAccessibleName("CPU kernel preparation")
        self.busy = QProgressBar(self)
        self.busy.setRange(0, 0)  # no known length: Qt's busy indicator
        self.busy.setMaximumWidth(90)
        self.busy.setAccessibleName("CPU kernels are being built")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 0, 6, 0)
        layout.addWidget(self.busy)
        layout.addWidget(self.label)
        self.hide()
        preparation.building.connect(self._show_building)
        preparation.finished.connect(self._show_result)
        if preparation.is_building:
            self._show_building()
        elif preparation.status is not None:
            self._show_result(preparation.status)

    def _show_building(self, _text: str = "") -> None:
        self.label.setText(PREPARING_TEXT)
        self.label.setToolTip("The fused C++ kernels are compiled once for this CPU; later starts load them at once.")
        self.busy.show()
        self.show()

    def _show_result(self, status: KernelStatus) -> None:
        self.busy.hide()
        if status.state is KernelState.FAILED:
            self.label.setText(failure_notice(status.reason))
            self.label.setToolTip(f"CPU kernels could not be built: {status.reason}")
            self.show()
        else:
            self.label.clear()
            self.hide()


def attach(status_bar: QStatusBar, preparation: KernelPreparation) -> KernelStatusIndicator:
    """Put the indicator at the left of the status bar's permanent widgets (temporary messages do not hide it)."""
    indicator = KernelStatusIndicator(preparation, status_bar)
    status_bar.insertPermanentWidget(0, indicator)
    return indicator


async def wait_before_answer(
    preparation: KernelPreparation | None, device: str | None, header: QAbstractButton | None = None
) -> None:
    """Let a question wait for a kernel build still running, when its model runs on the CPU (``device`` is
    ModelInfo.device). Called before the answer's clock starts, so the wait is neither thinking time nor time to
    the first token; on a GPU nothing waits. ``header`` (the answer's reasoning header, which says "Thinking…")
    says what the answer waits for meanwhile."""
    if preparation is None or device != "CPU" or preparation.status is not None:
        return
    live_text = header.text() if header is not None else ""
    if header is not None:
        header.setText(WAITING_TEXT)
    try:
        await preparation.wait_ready()
    finally:
        if header is not None and header.text() == WAITING_TEXT:
            header.setText(live_text)
