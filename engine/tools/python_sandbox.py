"""Running one untrusted python program: a separate process in a sandbox, with a time limit and memory, output and
process caps, no network, and a private temporary working folder that is deleted afterwards.

On Linux with a working bubblewrap (``bwrap``) the program sees a new root holding only read-only system folders,
the interpreter and its work dir, in its own namespaces (no network, its own processes). Without it, the fallback
is honest about what it does: resource limits, a scrubbed environment, its own session, a user and network namespace
when the kernel lets unprivileged users make one, and an audit hook that refuses network use and writes outside the
work dir, which careful code can get around. :func:`sandbox_info` says which one runs, in words for the settings.

Uses ``asyncio.create_subprocess_exec`` only: on Python 3.11 its default child watcher (ThreadedChildWatcher) waits
in a thread of its own and reports through ``call_soon_threadsafe``, so it works on a qasync loop in the Qt thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gpt_oss_desktop.engine.tools.sandbox_child import EXIT_MEMORY, EXIT_SETUP
from gpt_oss_desktop.engine.tools.sandbox_command import (
    PROGRAM_NAME,
    Launch,
    SandboxLimits,
    bwrap_launch,
    fallback_launch,
    find_marked_processes,
    probe_arguments,
)

__all__ = ["PythonSandbox", "SandboxInfo", "SandboxKind", "SandboxLimits", "SandboxRun", "sandbox_info"]

logger = logging.getLogger(__name__)

_READ_CHUNK: Final = 64 * 1024
_PROBE_TIMEOUT_S: Final = 5.0
# After the program exits, how long its output may keep arriving from processes it left behind.
_DRAIN_TIMEOUT_S: Final = 1.0

BUBBLEWRAP_SUMMARY: Final = (
    "Python code runs under bubblewrap: it sees only the system's read-only program folders and a private "
    "temporary folder, with no network, no access to your home folder, and limits on time, memory, output and "
    "processes."
)
FALLBACK_SUMMARY: Final = (
    "bubblewrap is not available, so Python code runs with a weaker fallback: it gets time, memory, output and "
    "process limits, a private temporary folder and no network where the system allows it, and it is asked not to "
    "write outside its folder, but determined code could still read or change your files. Install bubblewrap for "
    "real isolation: sudo apt install bubblewrap (Debian, Ubuntu), sudo dnf install bubblewrap (Fedora) or "
    "sudo pacman -S bubblewrap (Arch), then restart the app."
)


class SandboxKind(enum.StrEnum):
    BUBBLEWRAP = "bubblewrap"
    FALLBACK = "fallback"


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """Which sandbox the python tool uses here.

    Attributes:
        kind: bubblewrap, or the weaker fallback.
        summary: one or two plain sentences for the Tools settings on what protects the user (and, for the fallback,
            how to install bubblewrap and what the fallback does not protect).
        bwrap: the working bubblewrap executable, or None.
        bwrap_sizes_tmp: this bubblewrap takes ``--size`` (0.7 and later), so the private /tmp can be capped.
    """

    kind: SandboxKind
    summary: str
    bwrap: str | None = None
    bwrap_sizes_tmp: bool = False


def _bwrap_works(bwrap: str, *, tmp_size: bool) -> bool:
    try:
        done = subprocess.run(
            [bwrap, *probe_arguments(tmp_size=tmp_size)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        logger.info("bubblewrap at %s does not run: %s", bwrap, exc)
        return False
    if done.returncode != 0:
        logger.info("bubblewrap at %s fails here: %s", bwrap, done.stderr.decode(errors="replace").strip())
    return done.returncode == 0


@functools.cache
def sandbox_info() -> SandboxInfo:
    """Detect, once per process, whether a *working* bubblewrap is here (a trivial sandboxed command succeeds)."""
    bwrap = shutil.which("bwrap") if sys.platform == "linux" else None
    if bwrap is not None:
        for tmp_size in (True, False):
            if _bwrap_works(bwrap, tmp_size=tmp_size):
                return SandboxInfo(SandboxKind.BUBBLEWRAP, BUBBLEWRAP_SUMMARY, bwrap, bwrap_sizes_tmp=tmp_size)
    return SandboxInfo(SandboxKind.FALLBACK, FALLBACK_SUMMARY)


@dataclass(frozen=True, slots=True)
class SandboxRun:
    """How one program ended.

    Attributes:
        output: what it printed to stdout and stderr, interleaved as written (cut at the output cap, with a note).
        exit_code: its exit status; None when it was killed (time limit, output cap) or died of a signal.
        timed_out: it ran past the time limit and was killed.
        output_truncated: it printed more than the output cap and was killed.
        memory_exceeded: it ran out of its memory limit (an uncaught MemoryError).
        killed_by: the signal's name when it died of a signal it did not ask for (for example SIGSEGV); else "".
        seconds: wall-clock time from start to end.
    """

    output: str
    exit_code: int | None
    timed_out: bool = False
    output_truncated: bool = False
    memory_exceeded: bool = False
    killed_by: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.output_truncated)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    """SIGKILL the program's whole process group (it leads a new session). Under bubblewrap, killing bwrap tears
    down the pid namespace too: --die-with-parent kills its init, and the kernel then kills everything inside."""
    # Not process.kill(): Popen.send_signal polls first and may reap the child under asyncio's child watcher, which
    # then reports a made-up exit status. The leader of a session cannot leave its group, so killpg reaches it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _kill_all(process: asyncio.subprocess.Process, marker: str) -> None:
    """Kill the program's process group, then (fallback) its processes that left the group (os.setsid): found by
    the marker in their environment. Under bubblewrap the pid namespace takes care of those."""
    _kill_group(process)
    for pid in find_marked_processes(marker):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _remove_tree(folder: Path) -> None:
    """Delete the work dir even where the program took its own permissions away (chmod 000 on a subfolder)."""
    try:
        shutil.rmtree(folder)
    except OSError:
        # Top-down: each folder is opened up before os.walk lists it.
        os.chmod(folder, 0o700)
        for parent, subfolders, _ in os.walk(folder):
            for name in subfolders:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(parent, name), 0o700, follow_symlinks=False)
        shutil.rmtree(folder, ignore_errors=True)


def _truncation_note(limit: int) -> str:
    size = f"{limit // 1024} KiB" if limit >= 1024 else f"{limit} bytes"
    return f"\n[output truncated at {size}]"


class PythonSandbox:
    """Runs python programs, one process each, under :func:`sandbox_info`'s sandbox (or the fallback, forced).

    Args:
        limits: what each program may use.
        force_fallback: use the fallback even where bubblewrap works (tests; and a way out if bubblewrap misbehaves).
    """

    def __init__(self, limits: SandboxLimits | None = None, *, force_fallback: bool = False) -> None:
        self.limits = limits or SandboxLimits()
        detected = sandbox_info()
        self.info = SandboxInfo(SandboxKind.FALLBACK, FALLBACK_SUMMARY) if force_fallback else detected

    def _launch(self, work_dir: Path) -> Launch:
        if self.info.kind is SandboxKind.BUBBLEWRAP and self.info.bwrap is not None:
            return bwrap_launch(self.info.bwrap, work_dir, self.limits, tmp_size=self.info.bwrap_sizes_tmp)
        return fallback_launch(work_dir, self.limits, home=Path.home())

    async def run(self, code: str) -> SandboxRun:
        """Run ``code`` as a new python program and return how it ended. Cancelling the awaiting task kills the
        program (and everything it started) and deletes its folder before the CancelledError goes on."""
        started = time.perf_counter()
        work_dir = Path(tempfile.mkdtemp(prefix="gpt-oss-python-"))
        try:
            (work_dir / PROGRAM_NAME).write_text(code, encoding="utf-8")
            launch = self._launch(work_dir)
            # Our own pipe rather than asyncio's PIPE: asyncio's wait() also waits for the pipe's end, which a paused
            # reader (past the output cap) or a process that escaped the group would hold back forever.
            read_fd, write_fd = os.pipe()
            try:
                process = await asyncio.create_subprocess_exec(
                    *launch.argv,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=write_fd,
                    stderr=write_fd,  # one stream, interleaved as written
                    env=launch.env if launch.env is not None else {},
                    cwd=launch.cwd,
                    start_new_session=True,  # its own process group, which _kill_group kills whole
                )
            except BaseException:
                os.close(read_fd)
                raise
            finally:
                os.close(write_fd)
            output = asyncio.StreamReader(limit=2 * _READ_CHUNK)
            pipe = open(read_fd, "rb", buffering=0)  # noqa: SIM115 - the transport owns it and closes it
            transport, _ = await asyncio.get_running_loop().connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(output), pipe
            )
            try:
                return await self._collect(process, output, launch.marker, started)
            finally:
                # Whatever happened (cancelled included), nothing the program started outlives the call.
                transport.close()
                _kill_all(process, launch.marker)
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.shield(process.wait())
        finally:
            _remove_tree(work_dir)

    async def _collect(
        self, process: asyncio.subprocess.Process, output_stream: asyncio.StreamReader, marker: str, started: float
    ) -> SandboxRun:
        limit = self.limits.output_bytes
        chunks: list[bytes] = []
        size = 0
        truncated = False

        async def read_all() -> None:
            nonlocal size, truncated
            while chunk := await output_stream.read(_READ_CHUNK):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    truncated = True
                    return

        reader = asyncio.ensure_future(read_all())
        waiter = asyncio.ensure_future(process.wait())
        timed_out = False
        try:
            done, _ = await asyncio.wait(
                {reader, waiter}, timeout=self.limits.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                timed_out = True
            elif waiter in done and reader not in done:
                # The program exited: kill what it left behind (they hold the pipe open), then read what is left.
                _kill_all(process, marker)
                await asyncio.wait({reader}, timeout=_DRAIN_TIMEOUT_S)
            elif reader in done and not truncated:
                # End of output: the program is exiting; give it the rest of its time to do so.
                remaining = self.limits.timeout_s - (time.perf_counter() - started)
                timed_out = not (await asyncio.wait({waiter}, timeout=max(remaining, 0.0)))[0]
        finally:
            for task in (reader, waiter):
                task.cancel()
            _kill_all(process, marker)
            await asyncio.gather(reader, waiter, return_exceptions=True)
        killed = timed_out or truncated
        returncode = process.returncode
        raw = b"".join(chunks)[:limit]
        output = raw.decode("utf-8", errors="replace") + (_truncation_note(limit) if truncated else "")
        killed_by = ""
        if not killed and returncode is not None and returncode < 0:
            killed_by = signal.Signals(-returncode).name
        elif not killed and returncode is not None and returncode > 128 and self.info.kind is SandboxKind.BUBBLEWRAP:
            # bubblewrap reports a child killed by signal N as exit status 128 + N.
            with contextlib.suppress(ValueError):
                killed_by = signal.Signals(returncode - 128).name
        if returncode == EXIT_SETUP:
            logger.warning("the python sandbox could not be set up: %s", output.strip())
        return SandboxRun(
            output=output,
            exit_code=None if killed or killed_by else returncode,
            timed_out=timed_out,
            output_truncated=truncated,
            memory_exceeded=not killed and returncode == EXIT_MEMORY,
            killed_by=killed_by,
            seconds=time.perf_counter() - started,
        )
