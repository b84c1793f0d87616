"""The bridge between blocking download work and the GUI: a worker thread, events as Qt signals, a shared model list.

Downloads, hashing and probing block for minutes, so they run on one worker thread owned by a
:class:`WorkerRunner`; coroutines on the qasync loop ``await`` them. Events from the worker reach the GUI through
``loop.call_soon_threadsafe`` and are re-emitted as Qt signals on the GUI thread. Nothing Qt is created or touched
on the worker (see app/shell/garbage_collector.py for why that matters).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from PySide6.QtCore import QObject, Signal

from gpt_oss_desktop.app.downloads import DownloadEvent, InstalledModel, ModelRegistry, Progress

logger = logging.getLogger(__name__)

T = TypeVar("T")


class WorkerRunner(QObject):
    """Runs blocking calls one at a time on a worker thread.

    Signals:
        progress(Progress): a :class:`~app.downloads.Progress`, on the GUI thread.
        job_event(object): any other :data:`~app.downloads.DownloadEvent`, on the GUI thread.
        busy_changed(bool): a call started or ended.
    """

    progress = Signal(Progress)
    # object: DownloadEvent is a union of event classes; a Signal has one type per argument.
    job_event = Signal(object)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, name: str = "gpt-oss-download") -> None:
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = 0
        self._closed = False

    @property
    def busy(self) -> bool:
        return self._running > 0

    async def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread and return (or raise) its result, here."""
        self._loop = asyncio.get_running_loop()
        self._running += 1
        if self._running == 1:
            self.busy_changed.emit(True)
        try:
            return await self._loop.run_in_executor(self._executor, fn)
        finally:
            self._running -= 1
            if self._running == 0 and not self._closed:
                self.busy_changed.emit(False)

    def listener(self, event: DownloadEvent) -> None:
        """A job's listener: called on the worker thread, delivers on the GUI thread."""
        loop = self._loop
        if loop is None or self._closed or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call (app exit)
            loop.call_soon_threadsafe(self._deliver, event)

    def _deliver(self, event: DownloadEvent) -> None:
        if self._closed:
            return
        if isinstance(event, Progress):
            self.progress.emit(event)
        else:
            self.job_event.emit(event)

    def close(self) -> None:
        """Stop delivering; the worker thread ends after its current call (stop that call first)."""
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)


class ModelLibrary(QObject):
    """The installed-models registry shared by the window's menu, the wizard and the manager.

    Signals:
        changed(): a model was added, removed or re-checked (emit it with :meth:`notify` after changing it).
    """

    changed = Signal()

    def __init__(self, registry: ModelRegistry, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.registry = registry

    def models(self) -> list[InstalledModel]:
        return self.registry.models()

    def notify(self) -> None:
        self.changed.emit()
