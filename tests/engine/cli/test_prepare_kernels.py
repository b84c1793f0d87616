"""``gpt-oss-desktop-engine prepare-kernels``: one line per result, exit status 1 only when the kernels failed."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.engine.cli import main
from gpt_oss_desktop.kernels import cpu_build


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    # prepare() decides once per process; these tests make their own decision and the real one comes back after.
    monkeypatch.setattr(cpu_build._Active, "status", None)
    monkeypatch.setattr(cpu_build._Active, "ops", None)


def test_prepares_the_best_level(capsys: pytest.CaptureFixture[str], fresh_state: None) -> None:
    assert main(["prepare-kernels"]) == 0
    line = capsys.readouterr().out.strip()
    best = cpu_build.supported_levels()[0]
    assert line.startswith("CPU kernels ") and best in line and "\n" not in line


def test_a_refused_level_fails_with_the_reason(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fresh_state: None
) -> None:
    monkeypatch.setenv(cpu_build.ISA_ENV, "sse9")
    assert main(["prepare-kernels"]) == 1
    assert "GPTOSS_CPU_ISA=sse9 is not a level" in capsys.readouterr().out


def test_switched_off_is_not_a_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fresh_state: None
) -> None:
    monkeypatch.setenv(cpu_build.FUSED_ENV, "0")
    assert main(["prepare-kernels"]) == 0
    assert capsys.readouterr().out.startswith("CPU kernels off: switched off by GPTOSS_CPU_FUSED=0")


def test_all_levels_prints_one_line_per_level(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prepare-kernels", "--all-levels"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(cpu_build.supported_levels())
    assert all(level in line for level, line in zip(cpu_build.supported_levels(), lines, strict=True))
