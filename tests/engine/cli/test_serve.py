"""``python -m gpt_oss_desktop.engine serve``: a real process serving the demo model, reached over loopback."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "GPTOSS_DESKTOP_DATA_DIR": str(tmp_path / "data")}
    return subprocess.Popen(
        [sys.executable, "-P", "-m", "gpt_oss_desktop.engine", "serve", "--model", "demo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_then_stops_on_ctrl_c_or_sigterm(tmp_path: Path, stop_signal: signal.Signals) -> None:
    process = start(tmp_path, "--port", "0", "--api-key", "k")
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the server accepts connections (or the process dies)
        match = re.search(r"Serving demo on (http://127\.0\.0\.1:\d+/v1)", line)
        assert match, line + (process.stderr.read() if process.stderr and process.poll() is not None else "")
        url = match.group(1)
        body = {"model": "demo", "messages": [{"role": "user", "content": "What is 2+3?"}], "max_tokens": 8}
        assert httpx.post(f"{url}/chat/completions", json=body, timeout=60).status_code == 401
        reply = httpx.post(f"{url}/chat/completions", json=body, headers={"Authorization": "Bearer k"}, timeout=60)
        assert reply.status_code == 200 and reply.json()["usage"]["completion_tokens"] == 8
        process.send_signal(stop_signal)
        assert process.wait(timeout=30) == 0
        assert process.stdout.read().strip() == "stopping"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        process = start(tmp_path, "--port", str(port))
        _, err = process.communicate(timeout=120)
    assert process.returncode == 2
    assert err.strip().splitlines()[-1] == f"error: 127.0.0.1:{port} is already in use; choose another --port"
    assert "Traceback" not in err


@pytest.mark.parametrize("bad", [["--port", "70000"], ["--max-concurrent", "0"], ["--prefill-chunk", "-1"]])
def test_bad_options_are_one_line(tmp_path: Path, bad: list[str]) -> None:
    process = start(tmp_path, *bad)
    _, err = process.communicate(timeout=120)
    # argparse's one line, naming the flag as typed (not ServerConfig's field, max_concurrent), before any model loads
    assert process.returncode == 2 and f"error: argument {bad[0]}: must be " in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "note: toy demo model" not in err
