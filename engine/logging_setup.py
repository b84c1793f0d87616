"""Logging for the programs (the desktop app and the engine's command line): one line per record on the terminal,
everything with its traceback in a private log file.

A terminal is for the person who started the program: a warning or an error there is one line, and INFO is off
unless ``-v`` asks for it. A traceback helps only a bug report, so it goes to the log file alone (0600 in the 0700
``logs/`` folder of the user data folder, engine.private_files), which keeps INFO and up.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Final, TextIO

from gpt_oss_desktop.engine.private_files import PRIVATE_FILE_MODE, make_private_dir

TERMINAL_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"
FILE_FORMAT: Final = "%(asctime)s %(name)s %(levelname)s %(message)s"
LOG_FILE_BYTES: Final = 2 * 1024 * 1024  # then rotated: app.log.1 ... app.log.3 keep the previous ones
LOG_FILE_BACKUPS: Final = 3
# Marks the handlers installed here, so that configuring twice (tests, a second main()) replaces them.
_OURS: Final = "_gpt_oss_desktop_handler"


class OneLineFormatter(logging.Formatter):
    """Formats a record as one line, without its traceback or stack (those belong in the log file).

    ``details``: appended to records that carried a traceback, e.g. "(details in ~/.../app.log)".
    """

    def __init__(self, fmt: str = TERMINAL_FORMAT, details: str | None = None) -> None:
        super().__init__(fmt)
        self.details = details

    def format(self, record: logging.LogRecord) -> str:
        # The record is shared with the file handler, which may already have cached its traceback in exc_text:
        # hide all three for this handler only, and put them back.
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        line = " ".join(part.strip() for part in text.splitlines() if part.strip())
        if self.details and (saved[0] is not None or saved[2] is not None):
            line += f" {self.details}"
        return line


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A size-rotated log file created 0600 (and made 0600 if an older one was wider): logs quote paths and chats."""

    def _open(self) -> io.TextIOWrapper:
        def opener(name: str, flags: int) -> int:
            return os.open(name, flags, PRIVATE_FILE_MODE)

        # Always appended to (a rotating handler's mode is "a"): the previous runs' lines stay.
        handle = open(self.baseFilename, "a", encoding=self.encoding, errors=self.errors, opener=opener)  # noqa: SIM115
        if os.name == "posix":
            os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)  # O_CREAT's mode applies to a new file only
        return handle


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (as ``logging.lastResort`` does), so a replaced
    stream (a test's capture, a GUI launcher's redirect) is followed rather than a closed one kept."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass  # always sys.stderr


def _remove_ours(root: logging.Logger, kind: str) -> None:
    for handler in list(root.handlers):
        if getattr(handler, _OURS, None) == kind:
            root.removeHandler(handler)
            handler.close()


def configure_terminal(verbose: bool, stream: TextIO | None = None) -> logging.Handler:
    """Log to ``stream`` (stderr), one line per record: WARNING and up, or everything from DEBUG with ``verbose``.

    Replaces a terminal handler installed before; the root logger is lowered to INFO so a log file (see
    :func:`attach_log_file`) still gets INFO records that the terminal drops.
    """
    root = logging.getLogger()
    _remove_ours(root, "terminal")
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    handler.setFormatter(OneLineFormatter())
    setattr(handler, _OURS, "terminal")
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    return handler


def attach_log_file(path: Path, verbose: bool = False) -> logging.Handler | None:
    """Also log INFO and up (DEBUG with ``verbose``), tracebacks included, to the private file ``path``.

    Its folder is created 0700. A terminal handler installed by :func:`configure_terminal` then points to the file
    when a traceback is left out. Returns None (and says why, on the terminal) when the file cannot be written:
    the program runs on without it.
    """
    root = logging.getLogger()
    _remove_ours(root, "file")
    try:
        make_private_dir(path.parent)
        # Opened now (no delay): a file that cannot be written is reported here, not at the first record.
        handler = PrivateRotatingFileHandler(
            path, maxBytes=LOG_FILE_BYTES, backupCount=LOG_FILE_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", path, exc)
        return None
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(logging.Formatter(FILE_FORMAT))
    setattr(handler, _OURS, "file")
    # The file goes ahead of the terminal: by the time a line says "details in <file>", the file has them.
    terminals = [h for h in root.handlers if getattr(h, _OURS, None) == "terminal"]
    for terminal in terminals:
        root.removeHandler(terminal)
    root.addHandler(handler)
    for terminal in terminals:
        root.addHandler(terminal)
        if isinstance(terminal.formatter, OneLineFormatter):
            terminal.formatter.details = f"(details in {path})"
    return handler
