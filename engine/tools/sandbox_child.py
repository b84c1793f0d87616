"""The first code that runs inside the python tool's sandbox process: it locks the process down, then runs the
model's program as ``__main__``.

It is started as ``python -I -m gpt_oss_desktop.engine.tools.sandbox_child FILE`` from source, and as
``<app> --python-sandbox-child FILE`` in the frozen app (where ``sys.executable`` is the app, not Python; app/main.py
dispatches that flag here before anything else is imported). Its settings come in one environment variable
(:data:`SETTINGS_ENV`, JSON written by :mod:`engine.tools.sandbox_command`), which it removes before the program runs.

In order: drop root to an unprivileged user (only when asked: root is exempt from RLIMIT_NPROC), try a new user and
network namespace (the fallback's only real isolation without bubblewrap), set the resource limits, install the
fallback's audit hook, then run the program. Stdlib only, and nothing heavy: this runs once per tool call.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

SETTINGS_ENV: Final = "GPTOSS_SANDBOX_CHILD"
FROZEN_FLAG: Final = "--python-sandbox-child"
# Exit status after an uncaught MemoryError, so the parent can name the cause (a program's own sys.exit(86) would be
# mislabelled "memory", nothing worse).
EXIT_MEMORY: Final = 86
# The bootstrap itself failed (bad settings, a limit that could not be set): the program never ran.
EXIT_SETUP: Final = 85

_CLONE_NEWUSER: Final = 0x10000000
_CLONE_NEWNET: Final = 0x40000000
_WRITE_FLAGS: Final = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
# Audit events (https://docs.python.org/3/library/audit_events.html) the fallback guard refuses outright.
_BLOCKED_EVENTS: Final = frozenset(
    {
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "pty.spawn",
        "ctypes.dlopen",
        "sys.addaudithook",
    }
)
# Events whose first argument (and for renames and links, second) is a path that will be changed.
_PATH_CHANGING_EVENTS: Final = frozenset(
    {"os.remove", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.rmtree"}
)
_TWO_PATH_EVENTS: Final = frozenset({"os.rename", "os.link", "os.symlink"})
_LISTING_EVENTS: Final = frozenset({"os.listdir", "os.scandir"})


class SandboxSetupError(RuntimeError):
    """The sandbox could not be set up as asked; the program must not run."""


def _drop_privileges(uid: int, gid: int) -> None:
    # Group first: once the uid is dropped, changing groups is no longer allowed.
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid:
        raise SandboxSetupError("could not drop root privileges")


def _try_isolate() -> bool:
    """A new user namespace (so RLIMIT_NPROC counts only this sandbox's processes, on Linux >= 5.14) and a new
    network namespace (no interface but a down loopback: no network at all). Unprivileged user namespaces may be
    disabled (a sysctl, AppArmor on Ubuntu 24.04): then this returns False and only the audit hook guards."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET)) == 0
    except (OSError, AttributeError):
        return False


def _set_limits(limits: dict[str, int]) -> None:
    import resource

    for name, value in limits.items():
        resource.setrlimit(getattr(resource, "RLIMIT_" + name), (value, value))


def _inside(path: str, roots: Sequence[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _resolved(path: object) -> str | None:
    """The absolute, symlink-free form of a path argument; None for file descriptors (already opened)."""
    if isinstance(path, int):
        return None
    try:
        return os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def make_guard(writable: Sequence[str], hidden: Sequence[str], readable: Sequence[str]) -> Callable[[str, Any], None]:
    """The fallback's audit hook: refuse network use, starting programs, loading C libraries through ctypes, writes
    outside ``writable`` and any access under ``hidden`` (the user's home) except under ``readable`` (the
    interpreter). Audit hooks are not a security boundary (code can reach the OS without raising these events), so
    this stops mistakes and casual misuse, not determined code: sandbox_info().summary says so."""

    def refuse(what: str) -> None:
        raise PermissionError(f"{what} is not allowed in the python tool")

    def check_read(path: str | None) -> None:
        if path is not None and _inside(path, hidden) and not _inside(path, readable):
            refuse(f"reading {path}")

    def check_write(path: str | None) -> None:
        if path is not None and not _inside(path, writable):
            refuse(f"writing {path}")

    def guard(event: str, args: Any) -> None:
        if event in _BLOCKED_EVENTS:
            refuse("network access" if event.startswith("socket.") else event)
        elif event == "open":
            path, mode, flags = args
            resolved = _resolved(path)
            check_read(resolved)
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing:
                check_write(resolved)
        elif event in _LISTING_EVENTS:
            check_read(_resolved(args[0] if args else "."))
        elif event in _PATH_CHANGING_EVENTS:
            check_write(_resolved(args[0]))
        elif event in _TWO_PATH_EVENTS:
            check_write(_resolved(args[0]))
            check_write(_resolved(args[1]))

    return guard


def _print_traceback(exc: BaseException) -> None:
    """The traceback as the program would show it alone: this module's frames (the exec here, the guard's refusal)
    are left out, so it starts and ends at the program's own lines."""
    summary = traceback.extract_tb(exc.__traceback__)
    # The code's own file name, not __file__: in the frozen app they differ (an archive path vs the .pyc's).
    own = _print_traceback.__code__.co_filename
    summary = traceback.StackSummary.from_list([f for f in summary if f.filename != own])
    lines = ["Traceback (most recent call last):\n", *summary.format()] if summary else []
    sys.stderr.write("".join(lines + traceback.format_exception_only(type(exc), exc)))


def _run_program(path: Path) -> int:
    source = path.read_bytes()
    main_globals: dict[str, Any] = {"__name__": "__main__", "__file__": str(path), "__builtins__": __builtins__}
    sys.argv = [str(path)]
    try:
        code = compile(source, str(path), "exec", dont_inherit=True)
        exec(code, main_globals)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        sys.stderr.write(f"{exc.code}\n")  # sys.exit("message"): Python prints it and exits with 1
        return 1
    except BaseException as exc:
        _print_traceback(exc)
        return EXIT_MEMORY if isinstance(exc, MemoryError) else 1
    return 0


def _flush() -> int:
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Set the sandbox up from :data:`SETTINGS_ENV`, then run the program at ``argv[0]``; returns its exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = json.loads(os.environ.pop(SETTINGS_ENV))
        program = Path(args[0])
        if settings.get("drop_to") is not None:
            uid, gid = settings["drop_to"]
            _drop_privileges(uid, gid)
        rlimits = dict(settings.get("rlimits", {}))
        if settings.get("isolate") and not _try_isolate() and "NPROC" in rlimits:
            rlimits["NPROC"] += settings.get("nproc_without_userns", 0)
        _set_limits(rlimits)
        sys.dont_write_bytecode = True
        # stdout and stderr share one pipe: line buffering keeps a traceback after the lines printed before it.
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
        if settings.get("guard"):
            sys.addaudithook(make_guard(settings["writable"], settings["hidden"], settings["readable"]))
    except (KeyError, IndexError, ValueError, TypeError, OSError, SandboxSetupError) as exc:
        sys.stderr.write(f"python tool: the sandbox could not be set up ({exc!r})\n")
        return EXIT_SETUP
    status = _run_program(program)
    return status or _flush()


if __name__ == "__main__":
    sys.exit(main())
