"""Single instance: a second launch hands its request to the first and exits; stale sockets; bad requests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow

from gpt_oss_desktop.app.single_instance import (
    ActivationRequest,
    SingleInstance,
    SingleInstanceError,
    bring_to_front,
    claim,
    resolve_model_ref,
    server_name,
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
        client.sendall(payload)
        answer = b""
        while chunk := client.recv(64):
            answer += chunk
            if answer.endswith(b"\n"):
                break
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
