"""One lock per model object, held around each forward call (prefill or decode), so that several generation loops
(the app's :class:`~engine.generator.Generator` and a server's :class:`~engine.continuous_batcher.ContinuousBatcher`)
can share one :class:`~engine.model.Model` from different threads.

Why a lock: a forward call is not reentrant across threads. It keeps per-call state on the model (the RoPE tables of
the last positions tensor, CUDA-graph buffers), and two forwards at once would only split the memory bandwidth each
needs anyway. The lock is fair (first come, first served), so two loops interleave call by call instead of one
re-taking the lock before the other thread wakes up.
"""

from __future__ import annotations

import threading
import weakref
from types import TracebackType


class FairLock:
    """A reentrant lock granted in arrival order (a ticket lock on a condition variable)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:  # reentrant: a forward that calls another forward on the same thread
                self._depth += 1
                return
            ticket = self._next_ticket
            self._next_ticket += 1
            while self._serving != ticket:
                self._cond.wait()
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._cond:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a FairLock this thread does not hold")
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                self._serving += 1
                self._cond.notify_all()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


_registry_lock = threading.Lock()
# Keyed weakly so that a model dropped by the app takes its lock with it.
_locks: weakref.WeakKeyDictionary[object, FairLock] = weakref.WeakKeyDictionary()
# Objects that take no weak reference (a test double with __slots__) keep their lock for the process' lifetime.
_pinned: dict[int, tuple[object, FairLock]] = {}


def model_lock(model: object) -> FairLock:
    """The lock of ``model`` (the same object for every caller that passes the same model)."""
    with _registry_lock:
        try:
            lock = _locks.get(model)
            if lock is None:
                lock = _locks[model] = FairLock()
            return lock
        except TypeError:  # not weak-referenceable
            entry = _pinned.get(id(model))
            if entry is None or entry[0] is not model:
                entry = _pinned[id(model)] = (model, FairLock())
            return entry[1]
