"""The terminal gets one line per record (WARNING and up unless verbose); the private log file gets INFO and up
with tracebacks (engine/logging_setup.py)."""

from __future__ import annotations

import io
import logging
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_oss_desktop.engine.logging_setup import OneLineFormatter, attach_log_file, configure_terminal

logger = logging.getLogger("gpt_oss_desktop.tests.logging_setup")


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def _fail() -> None:
    raise ValueError("no such thing")


def _log_a_failure() -> None:
    try:
        _fail()
    except ValueError:
        logger.warning("could not load the model: /models/x: no such thing", exc_info=True)


def test_terminal_default_is_warning_one_line_no_traceback() -> None:
    terminal = io.StringIO()
    handler = configure_terminal(verbose=False, stream=terminal)
    assert handler.level == logging.WARNING
    logger.info("chat history open at /somewhere")
    logger.debug("details")
    _log_a_failure()
    logger.error("two\nlines")
    lines = terminal.getvalue().splitlines()
    assert lines == [
        "WARNING gpt_oss_desktop.tests.logging_setup: could not load the model: /models/x: no such thing",
        "ERROR gpt_oss_desktop.tests.logging_setup: two lines",
    ]


def test_verbose_shows_info_and_debug_on_the_terminal() -> None:
    terminal = io.StringIO()
    configure_terminal(verbose=True, stream=terminal)
    logger.info("an info line")
    logger.debug("a debug line")
    assert "an info line" in terminal.getvalue() and "a debug line" in terminal.getvalue()


def test_the_log_file_keeps_info_and_tracebacks_privately(tmp_path: Path) -> None:
    terminal = io.StringIO()
    configure_terminal(verbose=False, stream=terminal)
    path = tmp_path / "data" / "logs" / "app.log"
    handler = attach_log_file(path)
    assert handler is not None
    logger.info("chat history open")
    logger.debug("not kept without -v")
    _log_a_failure()
    handler.flush()
    text = path.read_text(encoding="utf-8")
    assert "chat history open" in text and "not kept without -v" not in text
    assert "Traceback (most recent call last)" in text and "ValueError: no such thing" in text
    # The terminal: still one line, pointing at the file for the details.
    (line,) = terminal.getvalue().splitlines()
    assert "Traceback" not in line and line.endswith(f"(details in {path})")
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_old_wide_log_file_is_made_private(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX modes")
    path = tmp_path / "app.log"
    path.write_text("older lines\n", encoding="utf-8")
    path.chmod(0o644)
    handler = attach_log_file(path)
    assert handler is not None
    logger.warning("appended")
    handler.flush()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8").startswith("older lines\n")  # appended, not truncated


def test_a_log_file_that_cannot_be_written_is_said_once_and_not_fatal(tmp_path: Path) -> None:
    terminal = io.StringIO()
    configure_terminal(verbose=False, stream=terminal)
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    assert attach_log_file(blocker / "app.log") is None
    assert "cannot write the log file" in terminal.getvalue()


def test_a_traceback_cached_by_the_file_handler_stays_off_the_terminal() -> None:
    # Handlers share the record: the file's formatter caches the traceback in exc_text before the terminal's runs.
    try:
        _fail()
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    full = logging.Formatter().format(record)
    assert "Traceback" in full and record.exc_text
    assert OneLineFormatter().format(record) == f"ERROR {logger.name}: failed"
    assert record.exc_text and record.exc_info is not None  # left as it was for the next handler


def test_configuring_twice_replaces_the_handlers() -> None:
    root = logging.getLogger()
    before = len(root.handlers)
    configure_terminal(verbose=False, stream=io.StringIO())
    configure_terminal(verbose=True, stream=io.StringIO())
    assert len(root.handlers) == before + 1


def test_the_terminal_follows_a_replaced_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_terminal(verbose=False)  # no stream given: sys.stderr as it is when a record comes
    replaced = io.StringIO()
    monkeypatch.setattr(sys, "stderr", replaced)
    logger.warning("to the new stream")
    assert replaced.getvalue().endswith("to the new stream\n")


def test_the_engine_cli_says_one_line_and_leaves_logging_as_it_found_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from gpt_oss_desktop.engine.cli import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    folder = tmp_path / "empty"
    folder.mkdir()
    assert main(["info", str(folder)]) == 2
    assert root.handlers == handlers and root.level == level
    err = capsys.readouterr().err
    assert err == f"error: {folder} is not a model folder: it has no config.json and no weights (*.safetensors)\n"
