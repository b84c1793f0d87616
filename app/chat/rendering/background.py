"""Markdown rendering on a worker thread, so that opening a chat with a long answer never freezes the window.

Parsing is pure Python (markdown-it-py and Pygments) and costs about 0.9 s per MB of answer on a 2-core VM, so a
long saved answer parsed on the GUI thread stalls the event loop for seconds. :class:`BackgroundRenderer` parses on
one shared daemon thread and hands the finished :class:`IncrementalMarkdown` back to the GUI thread through a queued
Qt signal; the view then only pays for ``setHtml``. While it parses, the worker hands the GIL over every 0.5 ms
instead of Python's 5 ms (``_short_gil_slices``), so the event loop keeps running while it works.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from gpt_oss_desktop.app.chat.rendering.incremental import IncrementalMarkdown

log = logging.getLogger(__name__)

WORKER_SWITCH_INTERVAL_S = 0.0005


@dataclass(frozen=True)
class _Job:
    request: int
    text: str
    style: str
    still_wanted: Callable[[int], bool]
    deliver: Callable[[int, IncrementalMarkdown], None]
    citations: dict[int, str] | None = None


_jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
_worker_lock = threading.Lock()
_worker: threading.Thread | None = None


@contextlib.contextmanager
def _short_gil_slices() -> Iterator[None]:
    """Hand the GIL over every WORKER_SWITCH_INTERVAL_S instead of every 5 ms while this thread parses.

    Why: the GUI thread takes the GIL for every Qt event that reaches a PySide widget (to look for a Python override of
    its handler), not once per tick; with the worker holding it, each of those waits up to the switch interval, and a
    tick's worth of events added up to a stall of ~1 s while 512 KB parsed (Xeon, Emerald Rapids class; `py-spy
    --native` showed the GUI thread in ``Shiboken::GilState`` -> ``pthread_cond_timedwait``).
    """
    previous = sys.getswitchinterval()
    sys.setswitchinterval(min(previous, WORKER_SWITCH_INTERVAL_S))
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def _work() -> None:
    while True:
        job = _jobs.get()
        if not job.still_wanted(job.request):
            continue  # the view moved on (another chat, another text) before its turn came
        try:
            with _short_gil_slices():
                markdown = IncrementalMarkdown(job.text, style=job.style, citations=job.citations)
                markdown.render()
        except Exception:  # a renderer bug must not kill the worker that every view shares
            log.exception("rendering %d characters of Markdown failed", len(job.text))
            markdown = IncrementalMarkdown("", style=job.style, citations=job.citations)
        try:
            job.deliver(job.request, markdown)
        except RuntimeError:
            log.debug("render request %d: its view was deleted", job.request)


def _submit(job: _Job) -> None:
    global _worker
    with _worker_lock:
        if _worker is None or not _worker.is_alive():
            # A daemon thread: quitting the app never waits for a long answer to finish parsing.
            _worker = threading.Thread(target=_work, name="markdown-render", daemon=True)
            _worker.start()
    _jobs.put(job)


class BackgroundRenderer(QObject):
    """Renders Markdown off the GUI thread; ``rendered(request, markdown)`` arrives on the GUI thread.

    Only the newest request counts: :meth:`submit` supersedes earlier ones, which are skipped if they have not started
    and dropped (``rendered`` is not emitted) if they finish late.
    """

    rendered = Signal(int, IncrementalMarkdown)  # (request number, the Markdown already rendered)
    _finished = Signal(int, IncrementalMarkdown)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._latest = 0  # the request whose result is wanted; 0: none
        self._requests = 0
        # Emitted on the worker thread; this object lives on the GUI thread, so Qt queues the call to _on_finished.
        self._finished.connect(self._on_finished)

    @property
    def busy(self) -> bool:
        """True from :meth:`submit` until its result is delivered (or :meth:`cancel`)."""
        return self._latest > 0

    def submit(self, text: str, style: str, citations: dict[int, str] | None = None) -> int:
        self._requests += 1
        self._latest = self._requests
        _submit(_Job(self._latest, text, style, self._wanted, self._finished.emit, dict(citations or {})))
        return self._latest

    def cancel(self) -> None:
        self._latest = 0

    def _wanted(self, request: int) -> bool:
        return request == self._latest  # read on the worker thread: a plain int, safe under the GIL

    def _on_finished(self, request: int, markdown: IncrementalMarkdown) -> None:
        if request != self._latest:
            return
        self._latest = 0
        self.rendered.emit(request, markdown)
