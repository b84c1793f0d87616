"""``gpt-oss-desktop-engine bench`` and ``bench-batch`` (from tools/): print the JSON report (speeds are measured,
never asserted) on a tiny model; an installed copy without tools/ says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gpt_oss_desktop.engine.cli import main, source_tools
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


def test_bench_reports_engine_speed_on_a_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make-test-model", str(tmp_path / "tiny"), "--preset", "tiny"]) == 0
    capsys.readouterr()
    assert main(["bench", "--model", str(tmp_path / "tiny"), "--prompt-tokens", "8", "--decode-tokens", "3"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine"] == "gpt-oss-desktop" and report["prefill_tokens"] == 8 and report["decode_tokens"] == 3
    assert report["decode_tok_s"] > 0 and report["prefill_tok_s"] > 0


@pytest.mark.parametrize("argv", [["bench", "--model", "x"], ["bench", "--kernels"], ["bench-batch"]])
def test_an_installed_copy_without_tools_says_so_in_one_line(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # An installed copy: no tools/ beside the package, and nothing named tools imported yet.
    monkeypatch.setattr(source_tools, "SOURCE_ROOT", tmp_path)
    monkeypatch.delitem(sys.modules, "tools")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "runs from a source checkout only" in err and f"`{argv[0]}" in err


def test_bench_with_q8_weights_reports_drift_and_the_bf16_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["make-test-model", str(tmp_path / "tiny"), "--preset", "tiny"]) == 0
    capsys.readouterr()
    argv = ["bench", "--model", str(tmp_path / "tiny"), "--prompt-tokens", "8", "--decode-tokens", "3"]
    assert main([*argv, "--weights", "q8", "--greedy-tokens", "20"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights"] == "q8"
    drift = report["drift"]
    assert drift["greedy_tokens"] == 20 and drift["prompt_tokens"] == 32
    assert 0 < drift["relative_logit_error"] < 0.1  # random weights: changed, but not by much
    assert 0 <= drift["teacher_forced_agreement"] <= 1 and 0 <= drift["free_running_prefix"] <= 20
    versus = report["vs_bf16"]
    assert versus["bf16"]["weights_bytes"] > report["weights_bytes"]  # measured in its own process
    assert versus["weights_bytes_ratio"] == round(report["weights_bytes"] / versus["bf16"]["weights_bytes"], 3)
    assert versus["decode_speedup"] > 0 and versus["peak_rss_ratio"] > 0 and versus["decode_best_step_speedup"] > 0
    assert report["decode_best_step_tok_s"] >= report["decode_steady_tok_s"]  # the fastest step against the mean
    # --greedy-tokens 0: no drift and no bf16 run.
    assert main([*argv, "--weights", "q8", "--greedy-tokens", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert "drift" not in report and "vs_bf16" not in report


def test_bench_batch_with_q8_weights_keeps_batched_tokens_identical(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench-batch", "--preset", "tiny", "--prompt-tokens", "8", "--new-tokens", "6", "--rounds", "1"]
    assert main([*argv, "--weights", "q8"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["weights"] == "q8" and report["identical_tokens"] is True


def test_bench_times_decode_after_long_caches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["make-test-model", str(tmp_path / "tiny"), "--preset", "tiny"]) == 0
    capsys.readouterr()
    argv = ["bench", "--model", str(tmp_path / "tiny"), "--prompt-tokens", "8", "--decode-tokens", "3"]
    assert main([*argv, "--decode-context", "40", "300"]) == 0
    rows = json.loads(capsys.readouterr().out)["decode_at_context"]
    assert [row["context_tokens"] for row in rows] == [40, 300]
    assert all(row["decode_steady_tok_s"] > 0 and row["vs_short_prompt"] > 0 for row in rows)
    assert rows[1]["kv_cache_bytes"] > rows[0]["kv_cache_bytes"]
    assert main([*argv, "--decode-context", "0"]) == 2


def test_decode_at_context_decodes_after_that_many_cached_tokens(tmp_path: Path) -> None:
    from gpt_oss_desktop.engine.loader import load_model
    from tools.bench.engine_bench import decode_at_context

    assert main(["make-test-model", str(tmp_path / "tiny"), "--preset", "tiny"]) == 0
    model = load_model(tmp_path / "tiny")
    lengths: list[int] = []
    decode = model.decode

    def recording_decode(token_ids: list[int], cache: object, slots: list[int]) -> object:
        lengths.append(cache.length(0))  # type: ignore[attr-defined]
        return decode(token_ids, cache, slots)  # type: ignore[arg-type]

    model.decode = recording_decode  # type: ignore[method-assign]
    row = decode_at_context(model, 70, 4, short_tok_s=1.0)
    assert lengths == [70, 71, 72, 73] and row["context_tokens"] == 70


def test_the_transformers_peer_runs_beside_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # The peer's child process must see site-packages' `kernels` (Hugging Face's, which transformers imports when
    # installed), not the checkout's kernels/ folder.
    assert main(["make-test-model", str(tmp_path / "tiny"), "--preset", "tiny", "--layout", "hf"]) == 0
    capsys.readouterr()
    argv = ["bench", "--model", str(tmp_path / "tiny"), "--prompt-tokens", "8", "--decode-tokens", "3"]
    assert main([*argv, "--peer", "transformers"]) == 0
    report = json.loads(capsys.readouterr().out)
    (peer,) = report["peers"]
    assert "error" not in peer, peer
    assert peer["engine"] == "transformers" and peer["decode_tok_s"] > 0 and peer["prefill_tok_s"] > 0
    assert set(report["vs"]) == {"transformers"}
