"""History search off the GUI thread: one worker thread, the newest query wins, older ones are cancelled."""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, Qt, Signal

from gpt_oss_desktop.app.history import ChatStore, HistoryError, HistorySearcher, SearchCancelledError, SearchHit

logger = logging.getLogger(__name__)

_job_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class _Job:
    query: str
    id: int = field(default_factory=lambda: next(_job_ids))
    cancelled: threading.Event = field(default_factory=threading.Event, compare=False)


@dataclass(slots=True)
class _Worker:
    """What the worker thread owns. Kept apart from the QObject so that shutting down never needs the QObject."""

    searcher: HistorySearcher
    executor: ThreadPoolExecutor
    current: _Job | None = None


class BackgroundSearch(QObject):
    """Runs ChatStore searches on a worker thread with a connection of its own (HistorySearcher).

    start() cancels the search before it (SQLite stops within a fraction of a millisecond), and only the newest
    query's outcome is delivered: the check is made here, on the GUI thread, when the outcome arrives, so a search
    that finished just as a newer one started cannot slip through.

    Signals:
        finished(str, list): the query and its list of SearchHit.
        failed(str, BaseException): the query and the exception that stopped it (a HistoryError, as a rule).
    """

    # list travels as a QVariantList: the slot gets a copy of the list, holding the same SearchHit objects.
    finished = Signal(str, list)
    failed = Signal(str, BaseException)
    # From the worker thread to this object's thread (queued): the job and its hits, or the exception.
    # object: the outcome is list[SearchHit] | BaseException, and a Signal has one type per argument.
    _job_done = Signal(_Job, object)

    def __init__(self, store: ChatStore, parent: QObject, *, marks: tuple[str, str] = ("[", "]")) -> None:
        """``marks``: what the hits' snippets wrap each matched word in (start, end)."""
        # A parent is required: the worker holds this object while it emits, and a parentless QObject whose last
        # reference went away on the worker thread would be destroyed there (see app/shell/garbage_collector.py).
        super().__init__(parent)
        self._worker = _Worker(
            store.open_searcher(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-search")
        )
        self._marks = marks
        self._in_flight = 0
        self._job_done.connect(self._on_job_done, Qt.ConnectionType.QueuedConnection)
        # Connected to a plain function over the worker's state, not to a method: self is gone by then.
        self.destroyed.connect(functools.partial(_shut_down, self._worker))

    @property
    def busy(self) -> bool:
        """A search (possibly a cancelled one) is queued or running on the worker."""
        return self._in_flight > 0

    def start(self, query: str) -> None:
        """Search for ``query``, cancelling the search before it."""
        self.cancel()
        job = _Job(query)
        try:
            self._worker.executor.submit(self._run, self._worker.searcher, job)
        except RuntimeError:  # after close(): nothing more is searched
            logger.debug("history search after close ignored")
            return
        self._worker.current = job
        self._in_flight += 1

    def cancel(self) -> None:
        """Drop the running search: its outcome is never delivered."""
        job, self._worker.current = self._worker.current, None
        if job is not None:
            job.cancelled.set()

    def close(self) -> None:
        """Cancel, then close the searcher's connection on the worker and let the thread end."""
        _shut_down(self._worker)

    def _run(self, searcher: HistorySearcher, job: _Job) -> None:
        """On the worker thread."""
        outcome: list[SearchHit] | BaseException
        if job.cancelled.is_set():
            outcome = SearchCancelledError("search cancelled before it started", searcher.path)
        else:
            try:
                start, end = self._marks
                outcome = searcher.search(job.query, start=start, end=end, cancelled=job.cancelled.is_set)
            except HistoryError as exc:
                outcome = exc
            except Exception as exc:  # a bug: log it here with its traceback, and let the GUI say the search failed
                logger.exception("history search for a %d-character query failed", len(job.query))
                outcome = exc
        # RuntimeError: the sidebar (and this object with it) was deleted while the search ran.
        with contextlib.suppress(RuntimeError):
            self._job_done.emit(job, outcome)

    def _on_job_done(self, job: _Job, outcome: object) -> None:
        self._in_flight -= 1
        if job is not self._worker.current:
            return  # superseded or cancelled: a newer result (or the full list) is what the user sees
        self._worker.current = None
        if isinstance(outcome, BaseException):
            self.failed.emit(job.query, outcome)
        else:
            self.finished.emit(job.query, outcome)


def _shut_down(worker: _Worker, *_destroyed: object) -> None:
    job, worker.current = worker.current, None
    if job is not None:
        job.cancelled.set()
    try:
        worker.executor.submit(worker.searcher.close)  # after any queued search, on the thread that used it
    except RuntimeError:
        return  # already shut down
    worker.executor.shutdown(wait=False)
