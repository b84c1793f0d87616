"""``gpt-oss-desktop-engine bench --kernels``: the byte/FLOP model against hand-computed counts, and the CPU path.

There is no GPU in CI, so the timed path is not run here. What is checked: the formulas (at 20b shapes, against
numbers worked out by hand and against kernels/README.md and perf-anchors §2), and that on a CPU the command
prints JSON saying GPU speed is unmeasured and, in the interpreter (tests/conftest.py sets TRITON_INTERPRET=1),
launches every kernel once at tiny shapes, with the ahead-of-time compile report (one kernel, one target, to stay
fast) beside it.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from gpt_oss_desktop.engine.checkpoint.presets import get_preset
from gpt_oss_desktop.engine.cli import main
from tools.bench import aot_report
from tools.bench import traffic as traffic_model

pytest.importorskip("triton")

CFG_20B = get_preset("20b")


def test_moe_decode_bytes_by_hand() -> None:
    # One token, 4 experts, H = I = 2880: mlp1 [5760, 2880] and mlp2 [2880, 2880] as 4-bit codes (2 per byte) plus
    # one scale byte per 32 weights (2880 / 32 = 90 per row), and bf16 bias rows of 5760 + 2880.
    weights = 4 * (5760 * 2880 // 2 + 5760 * 90 + 2880 * 2880 // 2 + 2880 * 90)
    biases = 4 * (5760 + 2880) * 2
    assert weights == 52_876_800  # kernels/README.md: 4 x 13,219,200
    traffic = traffic_model.moe_traffic(1, 4, 4, 2880, 2880, act_bytes=2, bias_bytes=2)
    assert traffic.parts["weights"] == weights
    assert traffic.parts["biases"] == biases
    # x and out (bf16 rows), act [4, 2880] bf16 written + read, pair_out [4, 2880] fp32 written + read,
    # routing weights fp32 + indices int64.
    activations = 2880 * 2 + 2880 * 2 + 2 * 4 * 2880 * 2 + 2 * 4 * 2880 * 4 + 4 * (4 + 8)
    assert traffic.bytes == weights + biases + activations == 53_095_728
    assert traffic.flops == 2 * 4 * (5760 * 2880 + 2880 * 2880)


def test_attention_decode_bytes_by_hand() -> None:
    # Full layer, one sequence at 4096 positions: K and V of 8 heads x 64 dims in bf16 = 2 KiB per position;
    # the split heuristic takes 32 splits (256 programs), whose fp32 partials (m, l, acc[64]) go out and back.
    traffic = traffic_model.attention_decode_traffic([4096], CFG_20B, 0, 4096, False, 2, 2)
    assert traffic.parts["kv"] == 4096 * 2 * 8 * 64 * 2 == 8 * 2**20
    assert traffic.parts["partials"] == 2 * 64 * 32 * 66 * 4
    assert traffic.flops == 4 * 64 * 64 * 4096
    # Sliding layer: only the ring's 128 positions are read, whatever the context.
    ring = traffic_model.attention_decode_traffic([4096], CFG_20B, 128, 128, True, 2, 2)
    assert ring.parts["kv"] == 128 * 2 * 8 * 64 * 2


def test_roofline_bytes_per_token_matches_perf_anchors() -> None:
    parts = traffic_model.roofline_bytes_per_token(CFG_20B, context=0)
    # perf-anchors §2.2: 20b native layout at context 0 reads 3.708 GB per token.
    assert parts["total"] == pytest.approx(3.708e9, rel=1e-3)
    assert parts["experts"] == pytest.approx(1.271e9, rel=1e-3)
    assert parts["unembedding"] == 201088 * 2880 * 2
    # 12 full layers read every position, 12 sliding layers at most 128: 24,576 B x T plus the window constant.
    assert traffic_model.kv_read_bytes(CFG_20B, 4096) == 12 * 4096 * 2048 + 12 * 128 * 2048


def test_cli_without_cuda_reports_unmeasured_and_smoke_runs(capsys: pytest.CaptureFixture[str]) -> None:
    if torch.cuda.is_available():
        pytest.skip("this test covers the CPU path")
    assert os.environ.get("TRITON_INTERPRET") == "1"
    # One kernel on one target keeps the ahead-of-time compile to about a second (all of them: about 7 s).
    argv = ["bench", "--kernels", "--iters", "2", "--aot-targets", "sm_80", "--aot-kernels", "_mlp1_prefill_kernel"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    # The AOT compile runs with the interpreter on in this process: it compiles in a child process with it off.
    aot = report["aot_compile"]
    assert aot["targets"] == ["sm_80"]
    [row] = aot["compiles"]
    assert (row["kernel"], row["target"]) == ("_mlp1_prefill_kernel", "sm_80")
    assert row["launches"] >= 1  # 20b and 120b prefill launches differ only in runtime ints: often one binary
    assert 0 < row["registers"] <= 255
    assert row["spill_stores_bytes"] == row["spill_loads_bytes"] == 0 and aot["spilling"] == 0
    assert 0 < row["shared_bytes"] <= row["shared_limit_bytes"] == 163 * 1024 and aot["shared_over_limit"] == 0
    assert report["device"] == "cpu"
    assert report["gpu_speed"] == "unmeasured (no CUDA device)"
    assert report["preset"] == "20b"
    # The byte model at 20b shapes is reported even without a GPU, with no timings in it.
    rows = {(row["kernel"], row["phase"]): row for row in report["kernels"]}
    assert rows["moe", "decode"]["bytes"] == 53_095_728
    assert all(row["time_us"] is None for row in report["kernels"])
    assert report["decode_step"]["bytes_per_token"] == traffic_model.roofline_bytes_per_token(CFG_20B, 4096)["total"]
    smoke = report["interpreter_smoke"]
    assert "say nothing about GPU speed" in smoke["note"]
    launched = {(row["kernel"], row["phase"]) for row in smoke["kernels"]}
    triton_ops = {"rmsnorm", "add_rmsnorm", "rope_q", "rope_k", "router", "moe"}
    for op in triton_ops:
        assert {(op, "decode"), (op, "prefill")} <= launched
    for name in ("attention_full", "attention_sliding"):
        assert (name, "prefill") in launched
    for name in ("attention_decode_full", "attention_decode_sliding"):
        assert {(name, "decode"), (name, "decode_b3")} <= launched
    for row in smoke["kernels"]:
        assert row["finite_output"], row
        assert row["interpreter_us"] > 0
        assert "time_us" not in row and "gbs" not in row  # interpreter times are never passed off as GPU numbers


def test_cli_needs_model_or_kernels(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench"]) == 2
    assert "--model is required" in capsys.readouterr().err


def test_aot_summary_keeps_the_worst_launch_per_kernel_and_target() -> None:
    base = {"kernel": "_k", "target": "sm_80", "registers": 40, "spill_stores_bytes": 0, "spill_loads_bytes": 0,
            "shared_bytes": 1024, "shared_limit_bytes": 2048, "num_warps": 4}  # fmt: skip
    rows = [base, base | {"registers": 90, "spill_loads_bytes": 8}, base | {"target": "sm_90", "shared_bytes": 9}]
    summary = {(row["kernel"], row["target"]): row for row in aot_report._summarise(rows)}
    assert summary["_k", "sm_80"] == base | {"registers": 90, "spill_loads_bytes": 8, "launches": 2}
    assert summary["_k", "sm_90"]["shared_bytes"] == 9 and summary["_k", "sm_90"]["launches"] == 1


def test_aot_report_skips_without_targets() -> None:
    assert aot_report.aot_compile_report(()) == "skipped: no targets asked for"
