"""tools/bench/child_process.py: a child's exit status, output and peak RSS measured from outside."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tools.bench.child_process import load_average, run_measured


def test_peak_rss_covers_what_the_child_touched() -> None:
    # 128 MiB of written (so resident) bytes; the child's own peak must include them.
    done = run_measured([sys.executable, "-c", "x = b'1' * (128 << 20); print(len(x))"])
    assert done.returncode == 0 and done.stdout.strip() == str(128 << 20)
    assert done.peak_rss_bytes >= 128 << 20


def test_a_big_parent_does_not_inflate_the_childs_peak() -> None:
    # Linux starts a spawned program's ru_maxrss at its spawner's peak; make ours large and the child's must stay small.
    ballast = b"1" * (256 << 20)
    small = run_measured([sys.executable, "-I", "-S", "-c", "pass"])
    assert len(ballast) and small.returncode == 0
    assert small.peak_rss_bytes < 64 << 20


def test_exit_status_stderr_and_cwd_come_back(tmp_path: Path) -> None:
    script = "import os, sys; sys.stderr.write(os.getcwd()); sys.exit(3)"
    done = run_measured([sys.executable, "-c", script], cwd=tmp_path)
    assert done.returncode == 3 and done.stderr == str(tmp_path) and done.wall_s > 0


def test_a_missing_program_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="could not start"):
        run_measured(["/nonexistent/program"])


def test_load_average_has_three_values() -> None:
    averages = load_average()
    assert averages is None or len(averages) == 3
