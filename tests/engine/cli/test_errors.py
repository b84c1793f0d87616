"""The command line's error boundary (issue 15): a one-line message for every error, a log for a bug, and an
interactive chat that survives a message longer than the context."""

from __future__ import annotations

import io
import stat
from pathlib import Path

import pytest
import torch

import gpt_oss_desktop.engine.cli as cli
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    monkeypatch.setenv(DATA_DIR_ENV, str(folder))
    return folder


def test_unexpected_error_is_one_line_and_a_private_log(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "fail", "tests.engine.cli.failing_command")
    assert cli.main(["fail"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: unexpected ValueError: something the engine did not expect on two lines")
    (log,) = (data_dir / "logs").glob("cli-error-*.log")
    assert f"details in {log}" in err
    assert "Traceback" in log.read_text() and "failing_command.py" in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(log.parent.stat().st_mode) == 0o700


def test_unexpected_error_when_no_log_can_be_written(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir.mkdir()
    (data_dir / "logs").write_text("a file where the folder should be")
    monkeypatch.setitem(cli.COMMANDS, "fail", "tests.engine.cli.failing_command")
    assert cli.main(["fail"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no log written" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch that cannot use CUDA")
@pytest.mark.parametrize(
    "device",
    [
        "cuda",
        "cuda:0",
        "gpu",
        pytest.param("xpu", marks=pytest.mark.skipif(torch.xpu.is_available(), reason="this torch has an XPU")),
    ],
)
def test_unusable_device_is_one_line(data_dir: Path, device: str, capsys: pytest.CaptureFixture[str]) -> None:
    # An AssertionError traceback ("Torch not compiled with CUDA enabled") before, from deep inside the load.
    assert cli.main(["chat", "--model", "demo", "--device", device, "hi"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --device {device!r}" if device == "gpu" else f"error: --device {device}:")
    assert "Traceback" not in err
    assert err.count("\n") == 1


def test_interactive_chat_goes_on_after_a_message_longer_than_the_context(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The real CLI on the shipped demo model. Before: the long message ended the chat with exit code 2.
    too_long = "word " * 200
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{too_long}\nWhat is 2+3?\n\n"))
    argv = ["chat", "--model", "demo", "--context", "128", "--max-tokens", "16", "--temperature", "0"]
    assert cli.main([*argv, "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "context holds 128" in captured.err and "the chat goes on" in captured.err
    assert captured.out.count("prompt (0 cached)") == 1  # the second message was answered, in a fresh context
    assert "word word" not in captured.out
