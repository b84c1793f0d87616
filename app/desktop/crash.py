"""Crash reporting: every uncaught error is written to a log file in the user data folder and shown in a dialog.

A desktop app started from a menu has no terminal, so a traceback printed to stderr is lost. :func:`install` hooks
the three places an uncaught Python error ends up (``sys.excepthook`` – which PySide also calls for errors raised
in slots –, ``threading.excepthook`` and the asyncio loop's exception handler) and points ``faulthandler`` at a file
for native crashes (torch, Qt). Each Python error gets its own ``crash-<timestamp>.log`` under
``<user data dir>/logs``; a dialog shows its path when a QApplication exists. A native crash kills the process
before anything can be shown, so its traceback is left in ``native-<pid>.log`` and kept (as
``native-crash-<time>-<pid>.log``) and announced at the next start. Tracebacks can quote chat text, so the folder is
0700 and every log 0600 (engine.private_files).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import faulthandler
import logging
import os
import platform
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import psutil

from gpt_oss_desktop.engine.paths import user_data_dir
from gpt_oss_desktop.engine.private_files import LOG_DIR_NAME, make_private_dir, open_private

logger = logging.getLogger(__name__)

APP_LOG_NAME: Final = "app.log"  # in log_dir()
NATIVE_LOG_PREFIX: Final = "native-"  # native-<pid>.log while running; native-crash-<time>-<pid>.log kept
_MAX_DIALOGS: Final = 1  # one crash dialog at a time: an error repeating in a paint event must not flood the screen

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def log_dir() -> Path:
    return user_data_dir() / LOG_DIR_NAME


def app_log_path() -> Path:
    """The app's log file (app/main.py starts it): INFO and up with tracebacks, private, beside the crash reports."""
    return log_dir() / APP_LOG_NAME


def _header(origin: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        app_version = version("gpt-oss-desktop")
    except PackageNotFoundError:
        app_version = "unknown"
    torch = sys.modules.get("torch")
    lines = [
        f"gpt-oss desktop {app_version} crash report",
        f"time: {datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"where: {origin}",
        f"python: {sys.version.split()[0]} ({sys.executable}){' frozen' if getattr(sys, 'frozen', False) else ''}",
        f"platform: {platform.platform()}",
        f"torch: {getattr(torch, '__version__', 'not loaded')}",
    ]
    return "\n".join(lines) + "\n\n"


def write_crash_log(exc_info: ExcInfo, origin: str, directory: Path | None = None) -> Path:
    """Write one uncaught error's report to a new timestamped file and return its path."""
    directory = make_private_dir(directory or log_dir())  # tracebacks quote chat text: the user's alone
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    text = _header(origin) + "".join(traceback.format_exception(*exc_info))
    for counter in range(1000):
        path = directory / (f"crash-{stamp}.log" if counter == 0 else f"crash-{stamp}-{counter}.log")
        try:
            # Exclusive: two threads failing in the same microsecond never share (or overwrite) a report.
            with open_private(path, exclusive=True) as f:
                f.write(text)
        except FileExistsError:
            continue
        return path
    raise OSError(f"too many crash reports named crash-{stamp}*.log in {directory}")


@dataclass
class CrashReporter:
    """The installed hooks; :meth:`uninstall` puts the previous ones back (tests, and a clean exit)."""

    directory: Path
    show_dialogs: bool = True
    reports: list[Path] = field(default_factory=list)
    _previous_excepthook: Callable[..., Any] = sys.__excepthook__
    _previous_threading_hook: Callable[..., Any] = threading.__excepthook__
    _fault_file: IO[str] | None = None
    _notifier: Any = None  # an app.desktop.crash_dialog.CrashDialogNotifier on the GUI thread, when Qt is up
    _loops: list[asyncio.AbstractEventLoop] = field(default_factory=list)

    # -- the hooks ------------------------------------------------------------------------------------------------

    def excepthook(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt):  # Ctrl+C in a terminal is no crash
            self._previous_excepthook(exc_type, exc, tb)
            return
        self._report((exc_type, exc, tb), "main thread")

    def threading_hook(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "unknown"
        self._report((args.exc_type, args.exc_value, args.exc_traceback), f"thread {name!r}")

    def loop_handler(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if not isinstance(exc, Exception):  # a warning (unclosed transport, slow callback): log it as asyncio would
            loop.default_exception_handler(context)
            return
        origin = f"event loop: {context.get('message', 'unhandled exception')}"
        self._report((type(exc), exc, exc.__traceback__), origin)

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Route ``loop``'s unhandled exceptions (failed tasks nobody awaited, callbacks) here."""
        loop.set_exception_handler(self.loop_handler)
        self._loops.append(loop)

    # -- reporting ------------------------------------------------------------------------------------------------

    def _report(self, exc_info: ExcInfo, origin: str) -> None:
        try:
            path = write_crash_log(exc_info, origin, self.directory)
        except OSError as exc:
            # Nowhere to write: the traceback still goes to stderr, and the dialog says so.
            self._previous_excepthook(*exc_info)
            logger.error("could not write a crash log to %s: %s", self.directory, exc)
            self._notify(f"{exc_info[1]!r}", None)
            return
        self.reports.append(path)
        logger.error("uncaught error (%s), details in %s", origin, path, exc_info=exc_info)
        self._notify(f"{type(exc_info[1]).__name__}: {exc_info[1]}", path)

    def _notify(self, summary: str, path: Path | None) -> None:
        if self.show_dialogs and self._notifier is not None:
            # A signal, so the dialog is built on the GUI thread whichever thread failed.
            self._notifier.crashed.emit(summary, "" if path is None else str(path))

    # -- install / uninstall --------------------------------------------------------------------------------------

    def uninstall(self) -> None:
        sys.excepthook = self._previous_excepthook
        threading.excepthook = self._previous_threading_hook
        for loop in self._loops:
            if not loop.is_closed():
                loop.set_exception_handler(None)
        self._loops.clear()
        if self._fault_file is not None:
            _close_native_log(self._fault_file)
            faulthandler.enable()  # back to stderr, as app.main set it up before
            self._fault_file = None
        if self._notifier is not None:
            self._notifier.deleteLater()
            self._notifier = None


def install(directory: Path | None = None, *, show_dialogs: bool = True, native_log: bool = True) -> CrashReporter:
    """Install the crash hooks for this process and return them (call after the QApplication exists to get
    dialogs). ``native_log`` points faulthandler at ``<directory>/native-crash.log``."""
    reporter = CrashReporter(directory or log_dir(), show_dialogs=show_dialogs)
    reporter._previous_excepthook = sys.excepthook
    reporter._previous_threading_hook = threading.excepthook
    sys.excepthook = reporter.excepthook
    threading.excepthook = reporter.threading_hook
    if native_log:
        reporter._fault_file = _enable_native_log(reporter.directory)
    if show_dialogs:
        reporter._notifier = _make_notifier()
    return reporter


def _enable_native_log(directory: Path) -> IO[str] | None:
    """Send faulthandler's tracebacks to ``native-<pid>.log``; keep earlier runs' native crashes first.

    One file per process, so that a second process on the same data folder (a second launch handing over to the
    first, a self-test) never truncates or moves the file of a process that is still running.
    """
    try:
        make_private_dir(directory)
        _keep_native_crashes(directory)
        path = directory / f"{NATIVE_LOG_PREFIX}{os.getpid()}.log"
        handle = open_private(path)
    except OSError as exc:
        logger.warning("native crashes will be reported on stderr only: cannot open %s: %s", directory, exc)
        return None
    faulthandler.enable(file=handle, all_threads=True)
    atexit.register(_close_native_log, handle)
    return handle


def _keep_native_crashes(directory: Path) -> None:
    """Rename the non-empty logs of processes that are gone to ``native-crash-<time>.log``; drop the empty ones."""
    for path in directory.glob(f"{NATIVE_LOG_PREFIX}*.log"):
        pid = path.stem.removeprefix(NATIVE_LOG_PREFIX)
        if not pid.isdigit() or int(pid) == os.getpid() or psutil.pid_exists(int(pid)):
            continue  # a kept crash (native-crash-…), or a process that is still running
        if path.stat().st_size == 0:
            path.unlink(missing_ok=True)  # a run that ended without a clean exit, but without a native crash
            continue
        stamp = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y%m%d-%H%M%S")
        kept = path.with_name(f"native-crash-{stamp}-{pid}.log")
        path.replace(kept)
        logger.warning("a previous run crashed in native code; its traceback is in %s", kept)


def _close_native_log(handle: IO[str]) -> None:
    """At a clean exit: nothing crashed, so an empty log is noise."""
    if handle.closed:
        return
    if faulthandler.is_enabled():
        faulthandler.disable()
    handle.close()
    path = Path(handle.name)
    with contextlib.suppress(OSError):
        if path.stat().st_size == 0:
            path.unlink()


def _make_notifier() -> Any:
    """A QObject on the GUI thread that turns crash signals into dialogs; None before Qt is up."""
    from PySide6.QtWidgets import QApplication

    from gpt_oss_desktop.app.desktop.crash_dialog import CrashDialogNotifier

    app = QApplication.instance()
    if not isinstance(app, QApplication):
        return None
    return CrashDialogNotifier(app, max_open=_MAX_DIALOGS)
