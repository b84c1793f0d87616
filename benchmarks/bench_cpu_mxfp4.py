"""Benchmark the fused CPU MXFP4 GEMV (kernels.cpu_mxfp4) against torch dequantise + matmul; prints JSON.

    python benchmarks/bench_cpu_mxfp4.py [--pool-mb 512] [--iters 50] [--ref-iters 3]

Two weight residencies are measured: "hot" reuses one expert matrix (it stays in L2/L3, an upper bound) and "stream"
cycles through a pool of distinct matrices larger than the last-level cache, which is what decode sees when it walks
32-128 experts per layer. GB/s counts packed bytes (blocks + scales) read per call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

# Runnable as a plain script from anywhere: the repository root holds the ``kernels`` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_oss_desktop.kernels import cpu_build, cpu_mxfp4
from gpt_oss_desktop.kernels.mxfp4 import dequantize_mxfp4


def _time_ms(fn: Callable[[int], object], iters: int, warmup: int = 2) -> tuple[float, float]:
    """(min, median) wall time in ms. The min is the kernel's own speed; the median also shows scheduler noise on a
    busy 2-core machine, where one preempted OpenMP thread stalls the whole call."""
    for i in range(warmup):
        fn(i)
    samples = []
    for i in range(iters):
        start = time.perf_counter()
        fn(warmup + i)
        samples.append((time.perf_counter() - start) * 1e3)
    return min(samples), statistics.median(samples)


def _case(n: int, k: int, t: int, pool_bytes: int, iters: int, ref_iters: int) -> dict[str, object]:
    g = k // 32
    packed = n * g * 17
    count = max(1, pool_bytes // packed)
    blocks = torch.randint(0, 256, (count, n, g, 16), dtype=torch.uint8)
    scales = torch.randint(118, 130, (count, n, g), dtype=torch.uint8)
    bias = torch.randn(count, n, dtype=torch.bfloat16)
    x = torch.randn(t, k, dtype=torch.bfloat16)
    x32 = x.float()

    def fused_hot(_: int) -> object:
        return cpu_mxfp4.mxfp4_linear(x, blocks[0], scales[0], bias[0])

    def fused_stream(i: int) -> object:
        e = i % count
        return cpu_mxfp4.mxfp4_linear(x, blocks[e], scales[e], bias[e])

    def fused_stream_f32(i: int) -> object:
        e = i % count
        return cpu_mxfp4.mxfp4_linear(x32, blocks[e], scales[e], bias[e])

    def reference(i: int) -> object:
        e = i % count
        return x @ dequantize_mxfp4(blocks[e], scales[e], torch.bfloat16).T + bias[e]

    result: dict[str, object] = {
        "N": n,
        "K": k,
        "T": t,
        "packed_MB": round(packed / 1e6, 2),
        "pool_matrices": count,
    }
    for label, fn in (("fused_bf16x_hot", fused_hot), ("fused_bf16x_stream", fused_stream),
                      ("fused_fp32x_stream", fused_stream_f32)):  # fmt: skip
        best, median = _time_ms(fn, iters)
        result[f"{label}_ms_min"] = round(best, 3)
        result[f"{label}_ms_median"] = round(median, 3)
        result[f"{label}_GBps_best"] = round(packed / (best * 1e-3) / 1e9, 2)
    ref_best, ref_median = _time_ms(reference, ref_iters, warmup=1)
    result["torch_dequant_matmul_ms_min"] = round(ref_best, 2)
    result["torch_dequant_matmul_ms_median"] = round(ref_median, 2)
    result["speedup_min_vs_min"] = round(ref_best / float(result["fused_bf16x_stream_ms_min"]), 1)  # type: ignore[arg-type]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool-mb", type=int, default=512, help="bytes of distinct weights to cycle through (> LLC)")
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--ref-iters", type=int, default=3)
    args = parser.parse_args()

    start = time.perf_counter()
    ok = cpu_mxfp4.available()
    first_use_s = time.perf_counter() - start
    result: dict[str, object] = {
        "available": ok,
        "first_use_s": round(first_use_s, 2),  # build on a cold cache, load otherwise
        "cpu_isa": cpu_mxfp4.isa(),  # the level that ran; GPTOSS_CPU_ISA forces one (kernels/cpu_build.py)
        "cpu_model": cpu_build.cpu_model_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if not ok:
        result["error"] = cpu_mxfp4.build_error()
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
        return
    with torch.inference_mode():
        result["cases"] = [
            _case(n, k, t, args.pool_mb << 20, args.iters, args.ref_iters)
            for n, k in ((5760, 2880), (2880, 2880))
            for t in (1, 4)
        ]
    sys.stdout.write(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
