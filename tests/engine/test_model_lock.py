"""engine.model_lock: one lock per model object, reentrant, granted in arrival order."""

from __future__ import annotations

import threading
import time

import pytest

from gpt_oss_desktop.engine.model_lock import FairLock, model_lock


class _Model:
    pass


class _SlotsModel:  # no __weakref__: the lock registry must still hand out one lock per object
    __slots__ = ()


def test_one_lock_per_model_object() -> None:
    a, b = _Model(), _Model()
    assert model_lock(a) is model_lock(a) and model_lock(a) is not model_lock(b)
    c = _SlotsModel()
    assert model_lock(c) is model_lock(c) and model_lock(c) is not model_lock(_SlotsModel())


def test_reentrant_on_one_thread_and_only_the_holder_releases() -> None:
    lock = FairLock()
    with lock, lock:
        pass
    lock.acquire()
    failures: list[BaseException] = []

    def release_elsewhere() -> None:
        try:
            lock.release()
        except RuntimeError as exc:
            failures.append(exc)

    thread = threading.Thread(target=release_elsewhere)
    thread.start()
    thread.join()
    lock.release()
    assert len(failures) == 1
    with pytest.raises(RuntimeError):
        lock.release()


def test_waiters_get_the_lock_in_arrival_order() -> None:
    lock = FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for index in range(4):

        def take(i: int = index) -> None:
            with lock:
                order.append(i)

        thread = threading.Thread(target=take)
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while lock._next_ticket < index + 2 and time.monotonic() < deadline:  # wait until it has queued
            time.sleep(0.001)
    lock.release()
    for thread in threads:
        thread.join(10)
    assert order == [0, 1, 2, 3]
