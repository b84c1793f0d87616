"""The command line and environment that start one sandboxed python program: under bubblewrap, or the fallback.

Kept apart from the process handling (engine/tools/python_sandbox.py) so that what the sandbox can see is one
readable list (:func:`bwrap_arguments`), and so tests can check it without starting anything.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gpt_oss_desktop.engine.tools import sandbox_child
from gpt_oss_desktop.engine.tools.sandbox_child import FROZEN_FLAG, SETTINGS_ENV

MIB: Final = 1024 * 1024
PROGRAM_NAME: Final = "main.py"  # the program's file in the work dir (tracebacks show /sandbox/main.py)
# Where bubblewrap shows the private work dir: the first of these that holds none of the interpreter's folders.
SANDBOX_WORK_DIRS: Final = ("/sandbox", "/python-sandbox")
NOBODY: Final = (65534, 65534)  # the uid and gid root drops to (see sandbox_child)
FIXED_PATH: Final = "/usr/local/bin:/usr/bin:/bin"
# What Python and the C library read from /etc; the rest of /etc (passwd, ssh, machine-id, ...) stays hidden.
_ETC_FILES: Final = (
    "ld.so.cache",
    "ld.so.conf",
    "localtime",
    "nsswitch.conf",
    "ssl",
    "ca-certificates",
    "alternatives",
)
# The bootstrap runs as a script, not with -m: it is stdlib-only, so this works however the package was put on
# sys.path (an editable install's finder, a wheel, a zipped tree's neighbour), and bubblewrap binds this one file
# rather than the package's folder.
CHILD_SCRIPT: Final = os.path.realpath(sandbox_child.__file__)


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """What one program may use.

    Attributes:
        timeout_s: wall-clock time before the whole sandbox is killed.
        memory_bytes: address space of each process (RLIMIT_AS): an allocation past it raises MemoryError.
        output_bytes: stdout and stderr together; past it the program is killed and the output cut.
        max_processes: processes and threads the program may run at once (RLIMIT_NPROC): a fork bomb stops here.
        max_file_bytes: the largest file it may write (RLIMIT_FSIZE).
        max_open_files: file descriptors per process (RLIMIT_NOFILE).
        tmp_bytes: size of the private /tmp under bubblewrap (a tmpfs, so in memory), where bubblewrap can size it.
    """

    timeout_s: float = 10.0
    memory_bytes: int = 512 * MIB
    output_bytes: int = 64 * 1024
    max_processes: int = 64
    max_file_bytes: int = 64 * MIB
    max_open_files: int = 256
    tmp_bytes: int = 64 * MIB


def child_command(program: str) -> list[str]:
    """The interpreter command that runs the bootstrap on ``program`` (a path as the child sees it).

    ``-I`` isolates it from the user's environment variables, user site-packages and the script's folder; ``-B``
    writes no .pyc. In the frozen app ``sys.executable`` is the app itself, which dispatches :data:`FROZEN_FLAG` to
    the bootstrap.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_FLAG, program]
    return [sys.executable, "-I", "-B", CHILD_SCRIPT, program]


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _processes_of(uid: int) -> int:
    """How many processes ``uid`` runs now (RLIMIT_NPROC counts them all when no user namespace separates ours)."""
    count = 0
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            try:
                count += entry.stat().st_uid == uid
            except OSError:
                continue
    return count


def _rlimits(limits: SandboxLimits, extra_processes: int) -> dict[str, int]:
    return {
        "AS": limits.memory_bytes,
        "NPROC": limits.max_processes + extra_processes,
        "FSIZE": limits.max_file_bytes,
        "NOFILE": limits.max_open_files,
        "CORE": 0,
        # CPU seconds per process: a process that escapes the kill (the fallback has no pid namespace) and spins
        # is stopped by the kernel soon after the time limit.
        "CPU": math.ceil(limits.timeout_s) + 1,
    }


def interpreter_roots() -> list[str]:
    """Folders the interpreter needs to read: its prefixes and library folders (a venv's prefix holds its
    site-packages; its base prefix, the standard library). Resolved, deduplicated, outermost first."""
    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates += [sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    if getattr(sys, "frozen", False):
        # The PyInstaller bundle: its _internal/ folder (_MEIPASS) and the app executable next to it.
        candidates += [getattr(sys, "_MEIPASS", sys.prefix), os.path.dirname(sys.executable)]
    roots: list[str] = []
    for candidate in sorted({os.path.realpath(c) for c in candidates if c}, key=len):
        if Path(candidate).exists() and not any(candidate.startswith(r.rstrip("/") + "/") for r in roots):
            roots.append(candidate)
    return roots


def _environment(work_dir: str, settings: Mapping[str, object]) -> dict[str, str]:
    # A fixed environment: no proxies, tokens or XDG folders of the user; HOME and TMPDIR point into the work dir.
    return {
        "PATH": FIXED_PATH,
        "HOME": work_dir,
        "TMPDIR": work_dir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        "MPLBACKEND": "Agg",
        # Threads count against RLIMIT_NPROC (and each BLAS thread reserves address space against RLIMIT_AS): a
        # BLAS that starts one thread per core would fail on a big machine. The tool's programs are small.
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        SETTINGS_ENV: json.dumps(settings),
    }


@dataclass(frozen=True, slots=True)
class Launch:
    """How to start one program: the argv, its environment (None: bubblewrap sets it), its working folder, and
    for the fallback a token in its environment that finds its processes afterwards (see find_marked_processes)."""

    argv: list[str]
    env: dict[str, str] | None
    cwd: str
    marker: str = ""


def find_marked_processes(marker: str) -> list[int]:
    """The processes whose initial environment holds ``marker``: the fallback's program and every process it forked,
    even one that left its process group (forks keep the environment block; the guard refuses exec)."""
    needle = marker.encode()
    found = []
    for entry in Path("/proc").iterdir() if marker and Path("/proc").is_dir() else ():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def fallback_drops_root() -> bool:
    """Whether the fallback runs root's programs as nobody: only when nobody can read the interpreter (root's own
    /root cannot be entered). Root is exempt from RLIMIT_NPROC, so without the drop the fallback has no fork cap."""
    return _is_root() and all(_world_traversable(root) for root in interpreter_roots())


def fallback_launch(work_dir: Path, limits: SandboxLimits, *, home: Path) -> Launch:
    """The program run directly, with rlimits, a new user+network namespace when the kernel allows it, root dropped
    to nobody when the interpreter is readable by nobody, and the audit guard (sandbox_child.make_guard)."""
    readable = interpreter_roots()
    drop = fallback_drops_root()
    if drop:
        os.chown(work_dir, *NOBODY)
    uid = NOBODY[0] if drop else os.getuid()
    settings = {
        "drop_to": list(NOBODY) if drop else None,
        "isolate": True,
        # In a new user namespace (if the bootstrap gets one) RLIMIT_NPROC counts only the program's processes;
        # without one it counts every process of the uid, so the bootstrap adds room for those running now.
        "rlimits": _rlimits(limits, 0),
        "nproc_without_userns": _processes_of(uid),
        "guard": True,
        "writable": [os.path.realpath(work_dir), "/dev/null"],
        "hidden": [os.path.realpath(home)],
        "readable": readable,
        "marker": secrets.token_hex(16),
    }
    program = str(work_dir / PROGRAM_NAME)
    env = _environment(str(work_dir), settings)
    return Launch(child_command(program), env, str(work_dir), marker=str(settings["marker"]))


def _world_traversable(path: str) -> bool:
    """Every folder from / down to ``path`` can be entered by others (root's /root cannot: then root keeps its uid)."""
    current = Path(path)
    for folder in [current, *current.parents]:
        try:
            if not folder.stat().st_mode & 0o001:
                return False
        except OSError:
            return False
    return True


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def sandbox_work_dir(roots: Sequence[str]) -> str:
    """The work dir's path inside bubblewrap: it must not hide a folder bound for the interpreter."""
    return next(d for d in SANDBOX_WORK_DIRS if not any(_within(r, d) for r in [*roots, CHILD_SCRIPT]))


def bwrap_arguments(work_dir: Path, limits: SandboxLimits, *, tmp_size: bool) -> list[str]:
    """bubblewrap's options: a new root holding only read-only system folders, the interpreter, and the work dir."""
    roots = interpreter_roots()
    inside = sandbox_work_dir(roots)
    args = ["--die-with-parent", "--new-session"]
    if _is_root():
        # Root in a user namespace is still uid 0 to the kernel, which never applies RLIMIT_NPROC to it: stay in
        # the host's user namespace and let the bootstrap drop to nobody (the two capabilities it needs for that).
        args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        args += ["--unshare-all"]  # user, ipc, pid, net, uts, cgroup
    for folder in ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin"):
        path = Path(folder)
        if path.is_symlink():  # merged /usr: /lib -> usr/lib
            args += ["--symlink", os.readlink(path), folder]
        elif path.is_dir():
            args += ["--ro-bind", folder, folder]
    for name in _ETC_FILES:
        if Path("/etc", name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    args += ["--proc", "/proc", "--dev", "/dev"]
    # /tmp before the binds: an interpreter or bootstrap that lives under the host's /tmp stays visible.
    if tmp_size:
        args += ["--size", str(limits.tmp_bytes)]
    args += ["--tmpfs", "/tmp"]
    made: set[str] = set()
    # The bootstrap's file, unless the interpreter's folders hold it; the frozen app runs it from its own archive.
    frozen = getattr(sys, "frozen", False)
    binds = roots if frozen or any(_within(CHILD_SCRIPT, root) for root in roots) else [*roots, CHILD_SCRIPT]
    for root in binds:
        if any(_within(root, system) for system in ("/usr", "/lib", "/lib64", "/bin")):
            continue
        # bubblewrap makes missing parents mode 0700 (unreadable once root drops to nobody); --dir makes them 0755.
        for parent in reversed(Path(root).parents[:-1]):
            if str(parent) not in made and str(parent) not in ("/usr", "/etc"):
                made.add(str(parent))
                args += ["--dir", str(parent)]
        args += ["--ro-bind", root, root]
    args += ["--bind", str(work_dir), inside, "--chdir", inside]
    return args


def bwrap_launch(bwrap: str, work_dir: Path, limits: SandboxLimits, *, tmp_size: bool) -> Launch:
    if _is_root():
        os.chown(work_dir, *NOBODY)  # the program runs as nobody (bwrap_arguments)
    settings = {
        "drop_to": list(NOBODY) if _is_root() else None,
        "isolate": False,  # bubblewrap made the namespaces
        # In its own user namespace the count is this sandbox's alone: bubblewrap's init, then the bootstrap (which
        # is one of max_processes). Root's program runs as nobody in the host's: count nobody's other processes.
        "rlimits": _rlimits(limits, _processes_of(NOBODY[0]) if _is_root() else 1),
        "guard": False,
    }
    inside = sandbox_work_dir(interpreter_roots())
    env_args: list[str] = ["--clearenv"]
    for key, value in _environment(inside, settings).items():
        env_args += ["--setenv", key, value]
    argv = [
        bwrap,
        *bwrap_arguments(work_dir, limits, tmp_size=tmp_size),
        *env_args,
        "--",
        *child_command(f"{inside}/{PROGRAM_NAME}"),
    ]
    return Launch(argv, None, str(work_dir))


def probe_arguments(*, tmp_size: bool) -> Sequence[str]:
    """A trivial bubblewrap run with the same kind of namespaces, to learn whether bubblewrap works here at all
    (it is installed but refused in some containers, or by AppArmor's user-namespace restriction)."""
    args = ["--unshare-all"] if not _is_root() else ["--unshare-pid", "--unshare-net"]
    args += ["--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    if tmp_size:
        args += ["--size", str(MIB)]
    return [*args, "--tmpfs", "/tmp", "--", "/bin/true"]
