"""Single instance: a second launch hands its request to the first and exits; stale sockets; bad requests."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from gpt_oss_desktop.app.desktop import crash, single_instance
from gpt_oss_desktop.app.desktop.single_instance import (
    ActivationRequest,
    ForeignPeerError,
    SingleInstance,
    SingleInstanceError,
    bring_to_front,
    claim,
    forward,
    resolve_model_ref,
    server_name,
    socket_peer_uid,
)


@pytest.fixture
def runtime_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private runtime folder and data folder, so the socket name is this test's own."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("GPTOSS_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    return {"XDG_RUNTIME_DIR": str(runtime), "GPTOSS_DESKTOP_DATA_DIR": str(tmp_path / "data")}


@pytest.fixture
def first(runtime_env: dict[str, str], qapp: Any) -> Iterator[SingleInstance]:
    instance = SingleInstance()
    instance.listen()
    yield instance
    instance.close()


def raw_request(path: str, payload: bytes) -> bytes:
    """A client that shares no code with the app: a plain Unix socket, one line out, the answer back."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(path)
        answer = b""
        try:
            client.sendall(payload)
            while chunk := client.recv(64):
                answer += chunk
                if answer.endswith(b"\n"):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server hung up on a refused client
        return answer


def test_the_name_depends_on_user_and_data_folder(runtime_env: dict[str, str], tmp_path: Path) -> None:
    name = server_name()
    assert name.startswith(runtime_env["XDG_RUNTIME_DIR"] + "/gpt-oss-desktop-")
    assert name.endswith(".sock")
    assert server_name(tmp_path / "other") != name
    assert server_name(Path(runtime_env["GPTOSS_DESKTOP_DATA_DIR"])) == name


def test_a_second_launch_hands_over_and_exits(first: SingleInstance, qtbot: Any, tmp_path: Path) -> None:
    window = QMainWindow()
    qtbot.addWidget(window)
    window.show()
    window.showMinimized()
    received: list[ActivationRequest] = []

    def on_request(request: ActivationRequest) -> None:
        received.append(request)
        bring_to_front(window)

    first.activation_requested.connect(on_request)
    (tmp_path / "models" / "mine").mkdir(parents=True)
    with qtbot.waitSignal(first.activation_requested, timeout=60_000):
        second = subprocess.Popen(
            [sys.executable, "-P", "-m", "gpt_oss_desktop.app", "--model", "models/mine"],
            cwd=tmp_path,
            env=os.environ.copy(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    output, _ = second.communicate(timeout=60)
    assert second.returncode == 0, output
    assert "already running" in output
    assert received[0].model == str(tmp_path / "models" / "mine")
    assert received[0].argv == ("--model", "models/mine")
    assert not window.windowState() & Qt.WindowState.WindowMinimized
    assert window.isVisible()
    # It handed over before touching the data folder (logs included: the first instance's files stay its own).
    assert not (tmp_path / "data").exists()


def test_a_stale_socket_from_a_crash_is_replaced(runtime_env: dict[str, str], qapp: Any, qtbot: Any) -> None:
    name = server_name()
    crashed = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    crashed.bind(name)  # the file a crashed instance leaves: bound once, nobody listening any more
    crashed.close()
    assert Path(name).exists()

    instance = SingleInstance(name)
    instance.listen()
    try:
        assert instance.listening
        answers: list[bytes] = []
        request = ActivationRequest(model="demo").to_bytes()
        with qtbot.waitSignal(instance.activation_requested, timeout=10_000) as blocker:
            worker = threading.Thread(target=lambda: answers.append(raw_request(name, request)))
            worker.start()
        qtbot.waitUntil(lambda: not worker.is_alive(), timeout=10_000)
        assert blocker.args == [ActivationRequest(model="demo")]
        assert answers == [b"ok\n"]
    finally:
        instance.close()


def test_a_live_instance_is_not_taken_over(first: SingleInstance) -> None:
    with pytest.raises(SingleInstanceError, match="another instance"):
        SingleInstance(first.name).listen()
    assert first.listening


def test_claim_listens_when_nobody_runs(runtime_env: dict[str, str], qapp: Any) -> None:
    instance = claim(ActivationRequest())
    assert instance is not None
    try:
        assert instance.listening
        assert instance.name == server_name()
    finally:
        instance.close()
    assert not Path(server_name()).exists()  # a clean exit leaves no socket behind


def test_a_malformed_request_is_dropped_and_the_server_keeps_working(first: SingleInstance, qtbot: Any) -> None:
    received: list[ActivationRequest] = []
    first.activation_requested.connect(received.append)
    answers: list[bytes] = []

    def send(payload: bytes) -> threading.Thread:
        worker = threading.Thread(target=lambda: answers.append(raw_request(first.name, payload)))
        worker.start()
        return worker

    bad = send(b'{"model": 42}\n')
    qtbot.waitUntil(lambda: not bad.is_alive(), timeout=10_000)
    assert answers == [b""]  # connection closed without an "ok"
    good = send(json.dumps({"model": None, "argv": []}).encode() + b"\n")
    qtbot.waitUntil(lambda: not good.is_alive() and bool(received), timeout=10_000)
    assert answers[1] == b"ok\n"
    assert received == [ActivationRequest()]


@pytest.mark.parametrize(
    "payload",
    [b"[]", b'{"model": 1}', b'{"argv": "x"}', b'{"argv": [1]}', b"\xff", b"not json"],
)
def test_request_parsing_rejects_garbage(payload: bytes) -> None:
    with pytest.raises(ValueError):
        ActivationRequest.from_bytes(payload)


def test_request_round_trips() -> None:
    request = ActivationRequest(model="/m/x y", argv=("--model", "x y"))
    assert ActivationRequest.from_bytes(request.to_bytes().rstrip(b"\n")) == request


def test_model_refs_are_resolved_against_the_launch_folder(tmp_path: Path) -> None:
    assert resolve_model_ref(None, tmp_path) is None
    assert resolve_model_ref("demo", tmp_path) == "demo"
    assert resolve_model_ref("m/20b", tmp_path) == str(tmp_path / "m" / "20b")
    assert resolve_model_ref("/abs/20b", tmp_path) == "/abs/20b"


# --- malformed requests (issue 15, gap 6) ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100_000,  # json.loads alone raises RecursionError on this
        b'{"argv": [' * 5_000,
        b'{"model": {"a": {"b": null}}}',
        b'{"argv": [["nested"]]}',
        json.dumps({"argv": ["x"] * 257}).encode(),
        json.dumps({"model": "m" * 5000}).encode(),
        json.dumps({"model": "a\0b"}).encode(),
        b'{"model": "' + b"m" * 70_000 + b'"}',
    ],
    ids=["deep-list", "deep-argv", "nested-model", "nested-argv", "many-args", "long-model", "nul", "oversized"],
)
def test_request_parsing_rejects_deep_big_or_misshapen_json(payload: bytes) -> None:
    with pytest.raises(ValueError):
        ActivationRequest.from_bytes(payload)


def test_brackets_inside_strings_are_not_nesting() -> None:
    request = ActivationRequest(model="/m/[[[{{{x", argv=("--model", '"]]]}}}\\'))
    assert ActivationRequest.from_bytes(request.to_bytes().rstrip(b"\n")) == request


def test_deeply_nested_json_on_the_socket_is_dropped_without_a_crash_report(
    first: SingleInstance, qtbot: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sent by this same user (who passes every credential check): one warning, no crash log, no dialog."""
    reporter = crash.install(tmp_path / "logs", native_log=False)
    received: list[ActivationRequest] = []
    first.activation_requested.connect(received.append)
    answers: list[bytes] = []
    try:
        with caplog.at_level(logging.WARNING, logger=single_instance.__name__):
            bad = threading.Thread(target=lambda: answers.append(raw_request(first.name, b"[" * 60_000 + b"\n")))
            bad.start()
            qtbot.waitUntil(lambda: not bad.is_alive(), timeout=10_000)
        good = threading.Thread(target=lambda: answers.append(raw_request(first.name, ActivationRequest().to_bytes())))
        good.start()
        qtbot.waitUntil(lambda: not good.is_alive() and bool(received), timeout=10_000)
    finally:
        reporter.uninstall()
    assert answers == [b"", b"ok\n"]
    assert reporter.reports == []
    warnings = [r.getMessage() for r in caplog.records if r.name == single_instance.__name__]
    assert len(warnings) == 1 and "nested deeper" in warnings[0]


# --- nobody else on the socket (issue 15, gap 2) -----------------------------------------------------------------

AS_ROOT = sys.platform.startswith("linux") and os.geteuid() == 0
NOBODY = 65534
needs_root = pytest.mark.skipif(not AS_ROOT, reason="running a process as another user needs root (Linux)")

# A program of another user: binds a socket path (creating its folder with the given mode unless "-"), answers "ok"
# to every connection as a running app would, and at "quit" prints everything it was sent. Standard library only.
SQUATTER = r"""
import os, socket, sys
path, folder_mode = sys.argv[1], sys.argv[2]
if folder_mode != "-":
    os.mkdir(os.path.dirname(path))
    os.chmod(os.path.dirname(path), int(folder_mode, 8))
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
os.chmod(path, 0o777)
server.listen(8)
print("ready", flush=True)
got = b""
while True:
    conn, _ = server.accept()
    with conn:
        conn.settimeout(5)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            if data == b"quit\n":
                break
            got += data
            conn.sendall(b"ok\n")
        except OSError:
            pass
print(repr(got), flush=True)
"""

# Another user's client: sends one request to a socket and prints the answer.
FOREIGN_CLIENT = r"""
import socket, sys
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
    client.settimeout(10)
    client.connect(sys.argv[1])
    answer = b""
    try:
        client.sendall(b'{"model": "/home/victim/evil", "argv": []}\n')
        while chunk := client.recv(64):
            answer += chunk
    except (BrokenPipeError, ConnectionResetError):
        pass
print(repr(answer), flush=True)
"""


@pytest.fixture(scope="module")
def nobody_python() -> str:
    """A Python interpreter that uid 65534 may run (this venv's may sit under a private home)."""
    if not AS_ROOT:
        pytest.skip("needs root")
    base = getattr(sys, "_base_executable", sys.executable)
    for candidate in (base, "/usr/bin/python3", shutil.which("python3")):
        try:
            if candidate and as_nobody([candidate, "-I", "-c", "pass"]).wait(timeout=30) == 0:
                return candidate
        except PermissionError:
            continue
    pytest.skip("no Python interpreter that uid 65534 can run")


def as_nobody(command: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        command,
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


class Squatter:
    """A socket of another user answering "ok"; :meth:`stop` returns what it was sent."""

    def __init__(self, python: str, path: Path, folder_mode: str = "-") -> None:
        self.path = path
        self.process = as_nobody([python, "-I", "-c", SQUATTER, str(path), folder_mode])
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        assert ready == "ready\n", ready + self.process.stdout.read()

    def stop(self) -> bytes:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.connect(str(self.path))
            client.sendall(b"quit\n")
        output, _ = self.process.communicate(timeout=30)
        return bytes(ast.literal_eval(output.strip()))


@pytest.fixture
def shared_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """XDG_RUNTIME_DIR unset and a /tmp-like temporary folder (world-writable, sticky) that other users share."""
    folder = Path(tempfile.mkdtemp(prefix="si-", dir="/tmp"))  # short: a socket path has at most 107 bytes
    folder.chmod(0o1777)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("GPTOSS_DESKTOP_DATA_DIR", str(tmp_path / "data"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def digest_for(data_dir: Path) -> str:
    uid = os.geteuid()
    return hashlib.sha256(f"{uid}\0{data_dir.absolute()}".encode()).hexdigest()[:16]


SECRET = ActivationRequest(model="/home/victim/models/private-finetune", argv=("--model", "private-finetune"))


@needs_root
def test_another_user_on_the_predictable_temp_name_gets_nothing(
    shared_tmp: Path, nobody_python: str, tmp_path: Path, qapp: Any
) -> None:
    """Before the fix the name, without XDG_RUNTIME_DIR, was /tmp/gpt-oss-desktop-<uid>-<digest>: a squatter bound
    it, answered "ok", got the model path and argv, and the app exited 0 as if it had handed over."""
    uid = os.geteuid()
    squatter = Squatter(nobody_python, shared_tmp / f"gpt-oss-desktop-{uid}-{digest_for(tmp_path / 'data')}")
    instance = claim(SECRET)
    try:
        assert instance is not None  # this launch runs; it did not hand over to the squatter
        assert instance.listening and instance.problem is None
        folder = Path(instance.name).parent
        assert folder == shared_tmp / f"gpt-oss-desktop-{uid}"
        assert oct(folder.stat().st_mode & 0o777) == "0o700" and folder.stat().st_uid == uid
    finally:
        if instance is not None:
            instance.close()
    assert squatter.stop() == b""


@needs_root
def test_a_socket_folder_made_by_another_user_is_refused_with_a_message(
    shared_tmp: Path, nobody_python: str, tmp_path: Path, qapp: Any, caplog: pytest.LogCaptureFixture
) -> None:
    uid = os.geteuid()
    folder = shared_tmp / f"gpt-oss-desktop-{uid}"
    squatter = Squatter(nobody_python, folder / f"gpt-oss-desktop-{uid}-{digest_for(tmp_path / 'data')}.sock", "700")
    with caplog.at_level(logging.WARNING, logger=single_instance.__name__):
        instance = claim(SECRET)
    try:
        assert instance is not None and not instance.listening
        assert instance.problem is not None
        assert f"{folder} belongs to another user (uid {NOBODY}" in instance.problem
        assert instance.problem in caplog.text
    finally:
        if instance is not None:
            instance.close()
    assert squatter.stop() == b""
    assert folder.stat().st_uid == NOBODY  # refused as found, not removed or taken over


@needs_root
def test_a_socket_of_another_user_is_neither_trusted_nor_removed(tmp_path: Path, qapp: Any) -> None:
    """In the user's own private folder (which only root could have put it there)."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    name = str(runtime / "app.sock")
    planted = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    planted.bind(name)
    planted.close()
    os.chown(name, NOBODY, NOBODY)
    with pytest.raises(ForeignPeerError, match=f"belongs to another user \\(uid {NOBODY}"):
        forward(SECRET, name)
    with pytest.raises(ForeignPeerError):
        SingleInstance(name).listen()
    instance = claim(SECRET, name)
    assert instance is not None and not instance.listening and instance.problem
    assert Path(name).exists()


@needs_root
def test_the_second_launch_checks_who_listens_before_sending(shared_tmp: Path, nobody_python: str, qapp: Any) -> None:
    """The socket file looks like ours (root hands it back), but the process listening on it is another user."""
    path = shared_tmp / "listening.sock"
    squatter = Squatter(nobody_python, path)
    os.chown(path, os.geteuid(), os.getegid())
    with pytest.raises(ForeignPeerError, match=f"another user \\(uid {NOBODY}"):
        forward(SECRET, str(path))
    assert squatter.stop() == b""


@needs_root
def test_the_first_instance_refuses_a_client_of_another_user(
    shared_tmp: Path, nobody_python: str, qapp: Any, qtbot: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = str(shared_tmp / "open.sock")
    instance = SingleInstance(name)
    instance.listen()
    received: list[ActivationRequest] = []
    instance.activation_requested.connect(received.append)
    try:
        os.chmod(name, 0o777)  # as if the folder and socket were open to all: the credential check still holds
        with caplog.at_level(logging.WARNING, logger=single_instance.__name__):
            client = as_nobody([nobody_python, "-I", "-c", FOREIGN_CLIENT, name])
            qtbot.waitUntil(lambda: client.poll() is not None, timeout=20_000)
        output = client.communicate()[0]
        assert client.returncode == 0, output
        assert output.strip() == "b''"  # no "ok": dropped
        assert received == []
        assert f"another user (uid {NOBODY}" in caplog.text
        answers: list[bytes] = []
        own = threading.Thread(target=lambda: answers.append(raw_request(name, ActivationRequest().to_bytes())))
        own.start()
        qtbot.waitUntil(lambda: not own.is_alive() and bool(received), timeout=10_000)
        assert answers == [b"ok\n"]
    finally:
        instance.close()


def test_the_peer_uid_of_a_real_socket_is_read_with_so_peercred() -> None:
    if not hasattr(socket, "SO_PEERCRED"):
        pytest.skip("Linux only")
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with left, right:
        assert socket_peer_uid(left.fileno()) == os.geteuid()
        left.sendall(b"still open")  # the descriptor survives the check
        assert right.recv(16) == b"still open"


def test_a_peer_of_another_uid_is_refused_both_ways(
    first: SingleInstance, qtbot: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without root no process of another user can be started, so the credential read is injected here (the real
    one, with a real second user, is in the tests above that run as root)."""
    received: list[ActivationRequest] = []
    first.activation_requested.connect(received.append)
    monkeypatch.setattr(single_instance, "peer_uid", lambda _socket: os.geteuid() + 1)
    with pytest.raises(ForeignPeerError, match="another user"):
        forward(SECRET, first.name)
    instance = claim(SECRET, first.name)
    assert instance is not None and not instance.listening
    assert instance.problem is not None and "another user" in instance.problem
    answers: list[bytes] = []
    plain = threading.Thread(target=lambda: answers.append(raw_request(first.name, SECRET.to_bytes())))
    plain.start()
    qtbot.waitUntil(lambda: not plain.is_alive(), timeout=10_000)
    assert answers == [b""] and received == []  # the first instance refused the client too


def test_a_socket_folder_open_to_others_is_refused(shared_tmp: Path, qapp: Any) -> None:
    folder = shared_tmp / f"gpt-oss-desktop-{os.geteuid()}"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(ForeignPeerError, match="open to other users"):
        server_name()
    instance = claim(SECRET)
    assert instance is not None and not instance.listening
    assert instance.problem is not None and "open to other users" in instance.problem


def test_an_unusable_runtime_dir_falls_back_to_the_private_temp_folder(
    shared_tmp: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = tmp_path / "wide-run"
    wide.mkdir()
    wide.chmod(0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(wide))
    assert Path(server_name()).parent == shared_tmp / f"gpt-oss-desktop-{os.geteuid()}"
