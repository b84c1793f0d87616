"""Crash reporting: uncaught errors from the main thread, Qt slots, other threads and the event loop are logged to a
file and announced in a dialog; native crashes land in a file that the next start keeps."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QMessageBox

from gpt_oss_desktop.app.desktop import crash
from gpt_oss_desktop.app.desktop.crash_dialog import DIALOG_OBJECT_NAME

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def reporter(tmp_path: Path, qapp: QApplication) -> Iterator[crash.CrashReporter]:
    # native_log=False: faulthandler is process-wide and pytest's own; the native log is tested in a subprocess.
    installed = crash.install(tmp_path / "logs", native_log=False)
    yield installed
    installed.uninstall()
    for box in open_dialogs():
        box.close()


def open_dialogs() -> list[QMessageBox]:
    return [
        w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.objectName() == DIALOG_OBJECT_NAME
    ]


def visible_dialogs() -> list[QMessageBox]:
    return [box for box in open_dialogs() if box.isVisible()]


def raise_and_report(message: str) -> None:
    try:
        raise ValueError(message)
    except ValueError:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]


def test_an_uncaught_error_writes_a_log_and_shows_its_path(reporter: crash.CrashReporter, qtbot: Any) -> None:
    raise_and_report("the answer was 41")

    assert len(reporter.reports) == 1
    log = reporter.reports[0]
    assert log.parent == reporter.directory and log.name.startswith("crash-")
    text = log.read_text(encoding="utf-8")
    assert "where: main thread" in text
    assert "ValueError: the answer was 41" in text
    assert "raise_and_report" in text  # the traceback, not just the message
    qtbot.waitUntil(lambda: len(visible_dialogs()) == 1, timeout=5000)
    box = visible_dialogs()[0]
    assert str(log) in box.informativeText()
    assert "the answer was 41" in box.detailedText()
    box.close()
    qtbot.waitUntil(lambda: not visible_dialogs(), timeout=5000)


class Emitter(QObject):
    fired = Signal()


@pytest.mark.qt_no_exception_capture
@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
@pytest.mark.parametrize("umask", [0o022, 0o002], ids=["umask022", "umask002"])
def test_crash_logs_are_private_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        try:
            raise ValueError("the secret prompt")
        except ValueError:
            path = crash.write_crash_log(sys.exc_info(), "test", tmp_path / "data" / "logs")  # type: ignore[arg-type]
    finally:
        os.umask(previous)
    assert [oct(stat.S_IMODE(p.stat().st_mode)) for p in (tmp_path / "data", path.parent, path)] == [
        "0o700", "0o700", "0o600"
    ]  # fmt: skip


def test_an_error_in_a_qt_slot_is_reported(reporter: crash.CrashReporter, qtbot: Any) -> None:
    emitter = Emitter()

    def broken_slot() -> None:
        raise RuntimeError("slot failed")

    emitter.fired.connect(broken_slot)
    emitter.fired.emit()  # PySide prints the error through sys.excepthook and carries on

    qtbot.waitUntil(lambda: len(reporter.reports) == 1, timeout=5000)
    assert "RuntimeError: slot failed" in reporter.reports[0].read_text(encoding="utf-8")
    qtbot.waitUntil(lambda: len(visible_dialogs()) == 1, timeout=5000)


def test_an_error_in_another_thread_is_reported_on_the_gui_thread(reporter: crash.CrashReporter, qtbot: Any) -> None:
    def work() -> None:
        raise KeyError("engine job")

    worker = threading.Thread(target=work, name="engine-test")
    worker.start()
    worker.join()

    assert len(reporter.reports) == 1
    text = reporter.reports[0].read_text(encoding="utf-8")
    assert "where: thread 'engine-test'" in text and "KeyError: 'engine job'" in text
    qtbot.waitUntil(lambda: len(visible_dialogs()) == 1, timeout=5000)  # built by the queued signal, on this thread
    assert visible_dialogs()[0].thread() is QApplication.instance().thread()  # type: ignore[union-attr]


def test_an_error_in_an_event_loop_callback_is_reported(
    reporter: crash.CrashReporter, loop: asyncio.AbstractEventLoop, run: Any
) -> None:
    reporter.watch_loop(loop)

    def callback() -> None:
        raise ZeroDivisionError("in a callback")

    async def scenario() -> None:
        loop.call_soon(callback)
        while not reporter.reports:
            await asyncio.sleep(0.01)

    run(scenario(), timeout=10)
    text = reporter.reports[0].read_text(encoding="utf-8")
    assert "where: event loop" in text and "ZeroDivisionError: in a callback" in text


def test_one_dialog_at_a_time_but_every_error_is_logged(reporter: crash.CrashReporter, qtbot: Any) -> None:
    for n in range(3):
        raise_and_report(f"error {n}")
    qtbot.waitUntil(lambda: len(visible_dialogs()) == 1, timeout=5000)
    assert len(reporter.reports) == 3
    assert len(set(reporter.reports)) == 3  # distinct files, none overwritten
    assert len(visible_dialogs()) == 1


@pytest.mark.qt_no_exception_capture  # the interrupt goes on to the previous hook, which would be pytest-qt's
def test_keyboard_interrupt_is_not_a_crash(reporter: crash.CrashReporter, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]
    assert reporter.reports == []
    assert not reporter.directory.exists() or not list(reporter.directory.iterdir())


@pytest.mark.qt_no_exception_capture  # with no file, the traceback goes on to the previous hook (stderr)
def test_an_unwritable_log_folder_still_shows_a_dialog(tmp_path: Path, qapp: QApplication, qtbot: Any) -> None:
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log folder should be", encoding="utf-8")
    installed = crash.install(blocker, native_log=False)
    try:
        raise_and_report("nowhere to write")
        assert installed.reports == []
        qtbot.waitUntil(lambda: len(visible_dialogs()) == 1, timeout=5000)
        assert "could not be saved" in visible_dialogs()[0].informativeText()
    finally:
        installed.uninstall()
        for box in open_dialogs():
            box.close()


def test_uninstall_restores_the_previous_hooks(tmp_path: Path, qapp: QApplication) -> None:
    before = (sys.excepthook, threading.excepthook)
    installed = crash.install(tmp_path, native_log=False, show_dialogs=False)
    assert sys.excepthook == installed.excepthook
    installed.uninstall()
    assert (sys.excepthook, threading.excepthook) == before


NATIVE_CRASH = """
import sys, faulthandler
from pathlib import Path
from gpt_oss_desktop.app.desktop import crash
crash.install(Path(sys.argv[1]), show_dialogs=False)
faulthandler._sigsegv()
"""


def test_a_native_crash_is_written_to_a_file_and_kept_at_the_next_start(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONFAULTHANDLER"}
    crashed = subprocess.Popen(
        [sys.executable, "-P", "-c", NATIVE_CRASH, str(logs)], cwd=REPO, env=env, stderr=subprocess.PIPE, text=True
    )
    _, stderr = crashed.communicate(timeout=60)
    assert crashed.returncode != 0, stderr
    native = (logs / f"{crash.NATIVE_LOG_PREFIX}{crashed.pid}.log").read_text(encoding="utf-8")
    assert "Segmentation fault" in native

    restarted = subprocess.run(
        [sys.executable, "-P", "-c", RESTART, str(logs)], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert restarted.returncode == 0, restarted.stderr
    assert "a previous run crashed in native code" in restarted.stderr
    kept = list(logs.glob("native-crash-*.log"))
    assert len(kept) == 1 and kept[0].name.endswith(f"-{crashed.pid}.log")
    assert "Segmentation fault" in kept[0].read_text(encoding="utf-8")
    # Private whatever the umask the test runs under (tracebacks can quote chat text).
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert stat.S_IMODE(kept[0].stat().st_mode) == 0o600
    # The restarted process exited cleanly: its own (empty) log is gone, the kept crash stays.
    assert sorted(p.name for p in logs.iterdir()) == [kept[0].name]


RESTART = """
import sys
from pathlib import Path
from gpt_oss_desktop.app.desktop import crash
crash.install(Path(sys.argv[1]), show_dialogs=False)
"""


def test_a_running_process_keeps_its_native_log(tmp_path: Path) -> None:
    """A second process on the same folder (a second launch, a self-test) leaves the first one's file alone."""
    logs = tmp_path / "logs"
    logs.mkdir()
    mine = logs / f"{crash.NATIVE_LOG_PREFIX}{os.getpid()}.log"  # this test process stands in for a running app
    mine.write_text("in use", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-P", "-c", RESTART, str(logs)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert mine.read_text(encoding="utf-8") == "in use"
    assert not list(logs.glob("native-crash-*"))
