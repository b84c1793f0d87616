"""``gpt-oss-desktop-engine bench-batch``: prints the JSON report (speeds are measured, never asserted) on a tiny
model."""

from __future__ import annotations

import json

import pytest

from gpt_oss_desktop.engine.cli import main
from gpt_oss_desktop.kernels import cpu_build


def test_bench_batch_cli_reports_both_modes_and_identical_tokens(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench-batch", "--preset", "tiny", "--prompt-tokens", "8", "--new-tokens", "6", "--rounds", "2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "preset tiny (random weights, seed 0)" and report["sequences"] == 3
    assert report["prompt_tokens"] == [8, 9, 10] and report["new_tokens_per_sequence"] == 6
    for section in ("decode", "end_to_end"):
        assert report[section]["sequential_tok_s"] > 0 and report[section]["batched_tok_s"] > 0
        assert report[section]["ratio"] > 0
    assert report["rounds"] == 2 and len(report["decode"]["ratio_per_round"]) == 2
    assert report["decode"]["median_step_ratio"] > 0 and report["end_to_end"]["median_round_ratio"] > 0
    assert report["identical_tokens"] is True
    # Which CPU kernel level ran, and on what CPU (None when the torch path ran instead).
    assert report["cpu_isa"] == cpu_build.active_level() and report["cpu_model"] == cpu_build.cpu_model_name()


def test_bench_batch_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench-batch", "--preset", "tiny", "--new-tokens", "0"]) == 2
    assert "must be positive" in capsys.readouterr().err
