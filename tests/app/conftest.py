"""Fixtures for GUI tests: a qasync event loop per test, isolated settings, windows over real backends."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import qasync
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.history import ChatStore
from gpt_oss_desktop.app.settings import make_settings
from gpt_oss_desktop.app.shell.async_generators import close_dropped_generators_on
from gpt_oss_desktop.app.shell.garbage_collector import GuiThreadGarbageCollector
from gpt_oss_desktop.app.shell.main_window import MainWindow
from gpt_oss_desktop.engine.scripted_model import ScriptedModel
from tests.helpers.hub_fixtures import (  # noqa: F401 (fixtures of the download tests)
    checkpoint_dir,
    decoy_dir,
    hub_settings,
    local_hub,
    model_registry,
    no_quit_on_close,
    online,
    sharded_checkpoint_dir,
)
from tests.helpers.remote_fixtures import demo_model, provider, start_server  # noqa: F401 (remote-server fixtures)

T = TypeVar("T")
Run = Callable[[Coroutine[Any, Any, T]], T]


@pytest.fixture(scope="session", autouse=True)
def gui_thread_gc(qapp: QApplication) -> Iterator[None]:
    """As in the app: cyclic garbage (Qt objects included) is collected on the GUI thread only
    (app/shell/garbage_collector.py); at the end everything left is collected here, so no later test's thread can
    destroy a Qt object."""
    collector = GuiThreadGarbageCollector(qapp)
    yield
    collector.stop()


@pytest.fixture
def loop(qapp: QApplication) -> Iterator[qasync.QEventLoop]:
    """A qasync loop over the test QApplication. Test bodies run inside ``run`` (never loop.stop(): see
    docs/setup-notes.md, it breaks later nested Qt waits)."""
    event_loop = qasync.QEventLoop(qapp)
    asyncio.set_event_loop(event_loop)
    hooks = sys.get_asyncgen_hooks()
    close_dropped_generators_on(event_loop)  # as app/main.py does
    yield event_loop
    sys.set_asyncgen_hooks(*hooks)
    pending = [t for t in asyncio.all_tasks(event_loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        event_loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    asyncio.set_event_loop(None)
    # Closed here, while its Qt objects are alive; left to the garbage collector, close() fails noisily.
    event_loop.close()


@pytest.fixture
def run(loop: qasync.QEventLoop) -> Run[Any]:
    def run_(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    return run_


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return make_settings(str(tmp_path / "settings.ini"))


@pytest.fixture
def make_window(qtbot: Any, settings: QSettings) -> Iterator[Callable[..., MainWindow]]:
    backends: list[LocalEngine] = []

    def make(backend: LocalEngine, store: ChatStore | None = None, **options: Any) -> MainWindow:
        """A shown window over ``backend`` (closed after the test); ``options`` go to :class:`MainWindow`."""
        if backend not in backends:
            backends.append(backend)
        window = MainWindow(backend, settings, store=store, **options)
        qtbot.addWidget(window)
        window.show()
        return window

    yield make
    for backend in backends:
        backend.close()


def scripted_engine(*scripts: list[int], **kwargs: Any) -> tuple[LocalEngine, ScriptedModel]:
    """A LocalEngine (real thread, queue, generator, parser) over a ScriptedModel test double."""
    model = ScriptedModel(list(scripts), **kwargs)
    return LocalEngine(loader=lambda _ref, _progress: model, max_context=4096), model


async def next_emission(signal: Any, start: Callable[[], object] | None = None, timeout: float = 20.0) -> Any:
    """Await the next emission of a Qt signal (optionally after calling ``start``) and return its argument."""
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def on_emit(value: Any = None) -> None:
        if not future.done():
            future.set_result(value)

    signal.connect(on_emit)
    try:
        if start is not None:
            start()
        return await asyncio.wait_for(future, timeout)
    finally:
        signal.disconnect(on_emit)


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait for a condition on the GUI state, letting the event loop run in between."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.005)


async def load(window: MainWindow, ref: str = "scripted") -> Awaitable[Any]:
    return await next_emission(window.model_loaded, lambda: window.load_model(ref))
