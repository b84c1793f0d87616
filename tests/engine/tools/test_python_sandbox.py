"""The python tool's sandbox against hostile programs, under bubblewrap (skipped where it does not work) and under
the fallback (forced), each asserting what that sandbox really guarantees.

Meaningful as root too (CI and this container run as root): under bubblewrap the test's files are hidden by the
mount namespace, not by permissions, and root's programs run as nobody so RLIMIT_NPROC applies. The fallback can only
drop root when nobody can read the interpreter; where it cannot, its fork cap does not hold and that test is skipped.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpt_oss_desktop.engine.tools import sandbox_child, sandbox_command
from gpt_oss_desktop.engine.tools.python_sandbox import (
    FALLBACK_SUMMARY,
    PythonSandbox,
    SandboxKind,
    SandboxLimits,
    SandboxRun,
    sandbox_info,
)
from gpt_oss_desktop.engine.tools.sandbox_child import FROZEN_FLAG

MIB = 1024 * 1024
# Small limits keep the file fast; the time limit leaves room for a loaded 2-core machine to start Python.
LIMITS = SandboxLimits(timeout_s=5.0, memory_bytes=256 * MIB, output_bytes=64 * 1024, max_processes=16)
CHILD_MODULE = b"engine.tools.sandbox_child"

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox's guarantees are Linux's")


@pytest.fixture(params=[SandboxKind.BUBBLEWRAP, SandboxKind.FALLBACK], ids=["bubblewrap", "fallback"])
def sandbox(request: pytest.FixtureRequest) -> PythonSandbox:
    if request.param is SandboxKind.BUBBLEWRAP and sandbox_info().kind is not SandboxKind.BUBBLEWRAP:
        pytest.skip("no working bubblewrap here (install the bubblewrap package)")
    return PythonSandbox(LIMITS, force_fallback=request.param is SandboxKind.FALLBACK)


def run(sandbox: PythonSandbox, code: str) -> SandboxRun:
    return asyncio.run(sandbox.run(code))


def _sandbox_processes() -> set[int]:
    """Processes running the sandbox bootstrap (its forks keep its command line), bubblewrap's included."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if CHILD_MODULE in cmdline or b"gpt-oss-python-" in cmdline:
                found.add(int(entry.name))
    return found


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    """After the test, no process the test's sandboxes started is still running."""
    before = _sandbox_processes()
    yield
    deadline = time.monotonic() + 2.0
    while (left := _sandbox_processes() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"sandbox processes outlived the run: {left}"


def test_a_program_runs_and_its_output_comes_back(sandbox: PythonSandbox) -> None:
    code = "import sys\nprint(6 * 7)\nprint('to stderr', file=sys.stderr)\nprint(repr(sys.stdin.read()))\n"
    result = run(sandbox, code)
    assert result.exit_code == 0 and result.ok
    assert result.output == "42\nto stderr\n''\n"  # stderr in order with stdout; stdin is closed (empty)


def test_an_exception_gives_the_programs_own_traceback(sandbox: PythonSandbox) -> None:
    result = run(sandbox, "x = 1\nraise ValueError('bad value')\n")
    assert result.exit_code == 1 and not result.ok
    assert "line 2, in <module>" in result.output and result.output.endswith("ValueError: bad value\n")
    assert "sandbox_child" not in result.output  # the bootstrap's frames are left out


def test_the_environment_is_scrubbed(sandbox: PythonSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    result = run(sandbox, "import os\nprint(sorted(os.environ.items()))")
    assert result.exit_code == 0
    assert "sk-test-secret" not in result.output and "proxy.invalid" not in result.output
    assert "GPTOSS_SANDBOX_CHILD" not in result.output  # the bootstrap's settings are gone before the program runs
    assert f"('PATH', '{sandbox_command.FIXED_PATH}')" in result.output


def test_no_network(sandbox: PythonSandbox) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    port = server.getsockname()[1]
    code = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('BLOCKED', type(exc).__name__)\n"
    )
    try:
        result = run(sandbox, code)
        with pytest.raises(BlockingIOError):  # nothing ever reached the test's server
            server.accept()
    finally:
        server.close()
    assert result.output.startswith("BLOCKED"), result.output


def test_nothing_outside_its_folder_is_writable(sandbox: PythonSandbox) -> None:
    host_tmp = Path("/tmp") / f"gpt-oss-escape-{uuid.uuid4().hex}"
    in_repo = Path(__file__).with_name(f"escape-{uuid.uuid4().hex}.txt")
    code = (
        "for path in [" + ", ".join(repr(str(p)) for p in (host_tmp, in_repo)) + "]:\n"
        "    try:\n"
        "        open(path, 'w').write('escaped')\n"
        "    except OSError as exc:\n"
        "        print('refused', type(exc).__name__)\n"
        "open('own.txt', 'w').write('mine')\n"
        "print(open('own.txt').read())\n"
    )
    try:
        result = run(sandbox, code)
        assert result.exit_code == 0, result.output
        assert result.output.endswith("mine\n")  # its own folder is writable
        assert not host_tmp.exists() and not in_repo.exists()
    finally:
        host_tmp.unlink(missing_ok=True)
        in_repo.unlink(missing_ok=True)


def test_the_users_home_is_not_readable(
    sandbox: PythonSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A home the test owns. As root, permissions would not stop a read: bubblewrap's mount namespace simply does not
    # contain it, and the fallback's guard refuses it (a refusal, not a boundary: see FALLBACK_SUMMARY).
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE-KEY-MATERIAL")
    monkeypatch.setenv("HOME", str(home))
    key, folder = str(home / ".ssh" / "id_ed25519"), str(home)
    code = (
        "import os\n"
        f"for read in (lambda: open({key!r}).read(), lambda: os.listdir({folder!r})):\n"
        "    try:\n"
        "        print(read())\n"
        "    except OSError as exc:\n"
        "        print('refused', type(exc).__name__)\n"
    )
    result = run(sandbox, code)
    assert "PRIVATE-KEY-MATERIAL" not in result.output and ".ssh" not in result.output
    assert result.output.count("refused") == 2, result.output


def test_a_fork_bomb_is_capped(sandbox: PythonSandbox, no_leftovers: None) -> None:
    if sandbox.info.kind is SandboxKind.FALLBACK and os.geteuid() == 0 and not sandbox_command.fallback_drops_root():
        pytest.skip("the fallback runs root's program as root (nobody cannot read this interpreter): no fork cap")
    # Bounded so that a broken cap cannot hurt the machine: 200 tries, each child sleeping until killed.
    code = (
        "import os, time\n"
        "n = 0\n"
        "try:\n"
        "    for _ in range(200):\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(30)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
        "print(n)\n"
    )
    started = time.monotonic()
    result = run(sandbox, code)
    assert result.output.startswith("refused BlockingIOError"), result.output  # EAGAIN from fork
    assert int(result.output.split()[-1]) < LIMITS.max_processes
    assert time.monotonic() - started < LIMITS.timeout_s  # the children die with the program: no wait for them


def test_an_endless_loop_is_stopped(sandbox: PythonSandbox, no_leftovers: None) -> None:
    quick = PythonSandbox(SandboxLimits(timeout_s=1.0), force_fallback=sandbox.info.kind is SandboxKind.FALLBACK)
    result = run(quick, "print('start', flush=True)\nwhile True:\n    pass\n")
    assert result.timed_out and result.exit_code is None and not result.ok
    assert result.output == "start\n"
    assert 1.0 <= result.seconds < 3.0


def test_100_mb_of_output_is_cut_quickly(sandbox: PythonSandbox, no_leftovers: None) -> None:
    code = "import sys\nline = 'x' * 999 + '\\n'\nfor _ in range(100_000):\n    sys.stdout.write(line)\n"
    result = run(sandbox, code)
    assert result.output_truncated and result.exit_code is None
    assert result.output.endswith("\n[output truncated at 64 KiB]")
    assert len(result.output.encode()) <= LIMITS.output_bytes + 64
    assert result.seconds < 3.0


@pytest.mark.parametrize(
    "code",
    ["block = bytearray(1024 ** 3)\n", "hoard = []\nwhile True:\n    hoard.append(bytearray(16 * 1024 * 1024))\n"],
    ids=["one-gib", "growing"],
)
def test_a_memory_hog_fails_cleanly(sandbox: PythonSandbox, code: str) -> None:
    result = run(sandbox, code)
    assert result.memory_exceeded and result.exit_code != 0 and not result.timed_out
    assert result.output.rstrip().endswith("MemoryError"), result.output


def test_cancelling_kills_the_program_and_deletes_its_folder(
    sandbox: PythonSandbox, monkeypatch: pytest.MonkeyPatch, no_leftovers: None
) -> None:
    started: list[asyncio.subprocess.Process] = []
    folders: list[str] = []
    spawn = asyncio.create_subprocess_exec

    async def recording_spawn(*args: str, **kwargs: object) -> asyncio.subprocess.Process:
        folders.append(str(kwargs["cwd"]))
        process = await spawn(*args, **kwargs)  # type: ignore[arg-type]
        started.append(process)
        return process

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording_spawn)

    async def cancel_it() -> None:
        task = asyncio.ensure_future(sandbox.run("import time\ntime.sleep(60)\n"))
        while not started:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # let it get to the sleep
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancel_it())
    assert started[0].returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(started[0].pid, 0)
    assert not Path(folders[0]).exists()


def test_it_runs_on_a_qasync_loop(sandbox: PythonSandbox, qapp: object) -> None:
    # The app's loop: qasync over the QApplication (pytest-qt's, shared by the session), in the Qt thread.
    qasync = pytest.importorskip("qasync")
    loop = qasync.QEventLoop(qapp)
    try:
        result = loop.run_until_complete(sandbox.run("print('on qasync')"))
    finally:
        loop.close()
    assert result.output == "on qasync\n" and result.exit_code == 0


def test_bubblewrap_shows_no_home_and_no_network() -> None:
    args = sandbox_command.bwrap_arguments(Path("/tmp/work"), LIMITS, tmp_size=True)  # builds, starts nothing
    bound = {args[i + 2] for i, arg in enumerate(args) if arg in ("--ro-bind", "--bind")}
    assert str(Path.home()) not in bound and "/" not in bound and "/etc" not in bound
    assert "--unshare-net" in args or "--unshare-all" in args
    assert {"--die-with-parent", "--new-session"} <= set(args)
    assert args[args.index("--bind") + 1 : args.index("--bind") + 3] == ["/tmp/work", "/sandbox"]


def test_the_frozen_app_starts_the_child_through_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert sandbox_command.child_command("/sandbox/main.py") == [sys.executable, FROZEN_FLAG, "/sandbox/main.py"]
    monkeypatch.setattr(sys, "frozen", False)
    script = sandbox_command.CHILD_SCRIPT
    assert sandbox_command.child_command("/x.py")[1:] == ["-I", "-B", script, "/x.py"]
    assert script.endswith("sandbox_child.py") and Path(script).is_file()


def test_the_fallback_says_what_it_does_not_protect() -> None:
    assert "sudo apt install bubblewrap" in FALLBACK_SUMMARY and "dnf" in FALLBACK_SUMMARY
    assert "pacman" in FALLBACK_SUMMARY and "could still read or change your files" in FALLBACK_SUMMARY
    assert PythonSandbox(LIMITS, force_fallback=True).info.summary == FALLBACK_SUMMARY


def test_the_app_entry_point_dispatches_the_child_flag_before_qt(tmp_path: Path) -> None:
    # What the frozen app does with FROZEN_FLAG, through the source entry point: the bootstrap runs the program, and
    # neither Qt nor the app's argument parser is involved.
    program = tmp_path / "main.py"
    program.write_text("import sys\nprint(6 * 7, 'PySide6' in sys.modules)\n")
    env = {"PATH": os.environ.get("PATH", ""), "GPTOSS_SANDBOX_CHILD": '{"rlimits": {}}'}
    done = subprocess.run(
        [sys.executable, "-m", "gpt_oss_desktop.app", FROZEN_FLAG, str(program)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "42 False\n"), done.stderr


def test_a_process_that_leaves_the_session_dies_with_the_program(sandbox: PythonSandbox, no_leftovers: None) -> None:
    # setsid() takes the child out of the process group that the kill reaches: bubblewrap's pid namespace still
    # ends it, and the fallback finds it by the marker in its environment.
    code = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(30)\n    os._exit(0)\nprint('left')\n"
    result = run(sandbox, code)
    assert result.output == "left\n" and result.exit_code == 0


def test_its_folder_is_deleted_even_when_it_locks_it(
    sandbox: PythonSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    code = "import os\nos.makedirs('locked/inner')\nopen('locked/inner/f', 'w').write('x')\nos.chmod('locked', 0)\n"
    result = run(sandbox, code)
    assert result.exit_code == 0, result.output
    assert list(tmp_path.iterdir()) == []


def test_a_missing_or_broken_bubblewrap_means_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpt_oss_desktop.engine.tools import python_sandbox

    try:
        python_sandbox.sandbox_info.cache_clear()
        monkeypatch.setattr(python_sandbox.shutil, "which", lambda name: None)
        assert sandbox_info().kind is SandboxKind.FALLBACK and sandbox_info().summary == FALLBACK_SUMMARY
        python_sandbox.sandbox_info.cache_clear()
        monkeypatch.setattr(python_sandbox.shutil, "which", lambda name: "/bin/false")  # installed, but fails
        assert sandbox_info().kind is SandboxKind.FALLBACK
    finally:
        python_sandbox.sandbox_info.cache_clear()


def test_the_fallback_guard_refuses_what_it_says(tmp_path: Path) -> None:
    # The hook itself, called directly (installing it would bind this test process for good).
    work, home = tmp_path / "work", tmp_path / "home"
    guard = sandbox_child.make_guard([str(work)], [str(home)], [str(home / "python")])
    guard("open", (str(work / "out.txt"), "w", os.O_WRONLY | os.O_CREAT))
    guard("open", ("/usr/lib/os-release", "r", os.O_RDONLY))
    guard("open", (str(home / "python" / "lib" / "os.py"), "r", os.O_RDONLY))  # the interpreter under home
    refused = [
        ("open", ("/tmp/elsewhere.txt", "w", os.O_WRONLY | os.O_CREAT)),
        ("open", (str(work / ".." / "escape.txt"), "a", os.O_WRONLY | os.O_APPEND)),
        ("open", (str(home / ".ssh" / "id_ed25519"), "r", os.O_RDONLY)),
        ("os.listdir", (str(home),)),
        ("os.rename", (str(work / "a"), "/tmp/a")),
        ("os.remove", ("/tmp/some-file",)),
        ("socket.connect", (None, ("127.0.0.1", 80))),
        ("subprocess.Popen", ("cat", ["cat"], None, None)),
        ("ctypes.dlopen", ("libc.so.6",)),
    ]
    for event, args in refused:
        with pytest.raises(PermissionError, match="not allowed in the python tool"):
            guard(event, args)


def test_the_frozen_app_binds_its_own_folder_and_no_bootstrap_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "gpt-oss-desktop"
    (bundle / "_internal").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(bundle / "_internal"), raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "gpt-oss-desktop"))
    args = sandbox_command.bwrap_arguments(tmp_path / "work", LIMITS, tmp_size=False)
    bound = {args[i + 1] for i, arg in enumerate(args) if arg == "--ro-bind"}
    assert str(bundle) in bound and sandbox_command.CHILD_SCRIPT not in bound
