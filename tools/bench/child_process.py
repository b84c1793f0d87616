"""Run a benchmark in a child process and measure it from outside: exit status, output, wall time, peak RSS.

Peak RSS is ``wait4``'s ``ru_maxrss`` of that one program, the figure ``/usr/bin/time -v`` prints as "Maximum resident
set size", so two engines measured this way are compared on equal terms. It must not be taken by this process
directly: Linux starts a new program's ``ru_maxrss`` at the high-water mark of the memory it was spawned from
(exec records the old address space's peak), which for a fork or vfork of this process is this process's own peak
(torch loaded, maybe a checkpoint). So a small reaper process (Python with no site packages, about 10 MB) spawns the
program and reports its ``wait4`` usage; that floor, not ours, is the least a measured program can show.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# argv: report-path program args...; spawns the program (inheriting stdio), waits, writes "exit_code maxrss".
_REAPER = """
import os, sys
report, argv = sys.argv[1], sys.argv[2:]
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
with open(report, "w") as f:
    f.write(f"{code} {usage.ru_maxrss}")
sys.exit(code if code >= 0 else 128 - code)
"""


@dataclass(frozen=True, slots=True)
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    peak_rss_bytes: int


def run_measured(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> ChildResult:
    """Run ``command`` to completion through the reaper; returns its status, output, wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "usage"
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            started = time.perf_counter()
            subprocess.run(
                [sys.executable, "-I", "-S", "-c", _REAPER, str(report), *command],
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                check=False,
            )
            wall_s = time.perf_counter() - started
        if not report.is_file():
            raise RuntimeError(f"could not start {command[0]}: {err_path.read_text(errors='replace')[-2000:]}")
        code, maxrss = (int(field) for field in report.read_text().split())
        # Linux reports ru_maxrss in KiB, macOS in bytes.
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
        return ChildResult(
            returncode=code,
            stdout=out_path.read_text(errors="replace"),
            stderr=err_path.read_text(errors="replace"),
            wall_s=wall_s,
            peak_rss_bytes=peak,
        )


def load_average() -> tuple[float, float, float] | None:
    """The 1/5/15-minute load averages (None where the OS has none)."""
    try:
        return os.getloadavg()
    except OSError:
        return None
