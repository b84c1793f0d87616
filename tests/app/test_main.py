"""``gpt-oss-desktop --model BAD`` as a user starts it from a terminal: a real process, offscreen.

The terminal gets one line for the failed load (no traceback, no INFO chatter); the traceback is in the private log
file. The app keeps running (the window shows the error), so the test waits for that line, then ends the process.
"""

from __future__ import annotations

import os
import queue
import signal
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gpt_oss_desktop.app.desktop.crash import APP_LOG_NAME
from gpt_oss_desktop.app.main import parse_args

REPO = Path(__file__).resolve().parents[2]
FAILED_LOAD = "could not load the model: "
_APP = (sys.executable, "-P", "-m", "gpt_oss_desktop.app")


def _start_with_model(tmp_path: Path, model: Path) -> tuple[list[str], Path]:
    """Start the app with ``--model model``; return its stderr lines up to the failed load's, and its data folder."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    data = tmp_path / "data"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "GPTOSS_DESKTOP_DATA_DIR": str(data),
        "XDG_RUNTIME_DIR": str(runtime),  # a single-instance socket of this test's own
        "GPTOSS_CPU_FUSED": "0",  # no first-run kernel build competing for the CPU
    }
    process = subprocess.Popen(
        [*_APP, "--model", str(model), "--settings", str(tmp_path / "settings.ini")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=120)  # the load fails within seconds; this bounds a hung start
            if line is None:
                pytest.fail(f"the app exited before reporting the failed load: {seen}")
            seen.append(line)
            if FAILED_LOAD in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    while (line := lines.get(timeout=30)) is not None:  # what it wrote before it ended
        seen.append(line)
    return seen, data


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM ends the app; a POSIX terminal")
def test_a_bad_model_gets_one_line_on_the_terminal_and_a_traceback_in_the_log(tmp_path: Path) -> None:
    # (the empty-folder message is checked in-process: tests/app/shell/test_error_banner.py)
    model = tmp_path / "nonexistent"
    stderr, data = _start_with_model(tmp_path, model)
    text = "\n".join(stderr)
    assert "Traceback" not in text, text
    assert not any(" INFO " in line or line.startswith("INFO ") for line in stderr), text  # INFO is off by default
    (line,) = [line for line in stderr if str(model) in line]
    assert FAILED_LOAD in line and line.count(str(model)) == 1, line
    log = data / "logs" / APP_LOG_NAME
    assert log.is_file() and "Traceback" in log.read_text(encoding="utf-8")
    assert line.endswith(f"(details in {log})")
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_verbose_is_off_by_default() -> None:
    assert parse_args([]).verbose is False
    assert parse_args(["-v"]).verbose is True
