"""``gpt-oss-desktop --self-test`` as a user (or the bundle smoke test) runs it: a real process, offscreen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
STEP_LINES = (
    "self-test: start the GUI: ok",
    "self-test: load the demo model: ok",
    "self-test: generate an answer: ok",
    "self-test: parse the answer as harmony: ok",
    "self-test: save the chat to history: ok",
    "self-test: run the python tool in its sandbox: ok",
    "self-test: read a web page and a PDF with the browser tool: ok",
    "self-test: serve the model over HTTP: ok",
)


def self_test(data_dir: Path, *extra: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "GPTOSS_SELF_TEST_FAIL"}
    environment.update(QT_QPA_PLATFORM="offscreen", GPTOSS_DESKTOP_DATA_DIR=str(data_dir), **env)
    return subprocess.run(
        [sys.executable, "-P", "-m", "gpt_oss_desktop.app", "--self-test", *extra],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_self_test_passes_and_reports_every_step(tmp_path: Path) -> None:
    result = self_test(tmp_path / "data")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for expected in STEP_LINES:
        assert any(line.startswith(expected) for line in lines), (expected, result.stdout)
    assert lines[-1].startswith("self-test passed in ")
    # The demo was materialised in the data folder; nothing else of the user's was touched or created there but logs.
    assert {p.name for p in (tmp_path / "data").iterdir()} <= {"models", "logs"}
    assert not list((tmp_path / "data").rglob("crash-*.log"))


def test_a_broken_data_folder_fails_at_the_load_step(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be", encoding="utf-8")
    result = self_test(not_a_folder)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "self-test FAILED at step 'load the demo model' (load)" in result.stdout
    assert "self-test passed" not in result.stdout


@pytest.mark.slow
def test_an_injected_failure_names_its_step(tmp_path: Path) -> None:
    result = self_test(tmp_path / "data", GPTOSS_SELF_TEST_FAIL="parse")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "self-test: generate an answer: ok" in result.stdout
    assert "self-test FAILED at step 'parse the answer as harmony' (parse): failed on purpose" in result.stdout


def test_running_out_of_time_exits_2_naming_the_step(tmp_path: Path) -> None:
    result = self_test(tmp_path / "data", "--self-test-timeout", "0.001")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "timed out after" in result.stdout
    assert "self-test FAILED at step '" in result.stdout
