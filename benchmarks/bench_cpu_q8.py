"""Benchmark the CPU decode GEMVs of the dense projections: the bf16 GEMV over the checkpoint's rows, over the same
rows packed in 12 bits (kernels.bf16_packed, what a CPU model holds by default) and the 8-bit GEMV of ``--weights q8``
(kernels.cpu_q8); prints JSON.

    python benchmarks/bench_cpu_q8.py [--iters 20] [--tokens 1 4]

At the gpt-oss-20b shapes of the matrices both modes convert (qkv 5120x2880, out 2880x4096, unembedding
201088x2880), the three kernels' calls are interleaved in one process (so all see the same machine load) and the
minimum over ``--iters`` calls is kept. The qkv and out matrices are cycled through a pool of 24 (one per 20b layer,
larger than the last-level cache) so each call streams its weights from memory, as a decode step does. GB/s counts
the weight bytes read per call (int8 values + bf16 scales for q8, the packed layout's bytes for packed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

# Runnable as a plain script from anywhere: the repository root holds the package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_oss_desktop.kernels import bf16_packed, cpu_build, cpu_mxfp4, cpu_q8
from gpt_oss_desktop.kernels.q8 import quantize_q8

SHAPES = {"qkv": (5120, 2880, 24), "out": (2880, 4096, 24), "unembedding": (201088, 2880, 1)}


def _min_ms(fn: Callable[[int], object], i: int, best: float) -> float:
    start = time.perf_counter()
    fn(i)
    return min(best, (time.perf_counter() - start) * 1e3)


def _case(name: str, t: int, iters: int) -> dict[str, object]:
    n, k, pool = SHAPES[name]
    gen = torch.Generator().manual_seed(0)
    dense = [(torch.randn(n, k, generator=gen) * 0.02).to(torch.bfloat16) for _ in range(pool)]
    q8 = [quantize_q8(w) for w in dense]
    packed = [bf16_packed.pack(w) for w in dense]
    assert all(p is not None for p in packed), "these shapes always pack"
    x = torch.randn(t, k, generator=gen).to(torch.bfloat16)
    fp32_out = name == "unembedding"

    def run_bf16(i: int) -> object:
        return cpu_mxfp4.bf16_linear(x, dense[i % pool], fp32_out=fp32_out)

    def run_q8(i: int) -> object:
        return cpu_q8.q8_linear(x, q8[i % pool], fp32_out=fp32_out)

    def run_packed(i: int) -> object:
        weight = packed[i % pool]
        assert weight is not None
        return bf16_packed.packed_linear(x, weight, fp32_out=fp32_out)

    best_bf16 = best_q8 = best_packed = float("inf")
    for i in range(iters + 2):  # two warm-up rounds, then the calls interleaved
        b = _min_ms(run_bf16, i, float("inf"))
        p = _min_ms(run_packed, i, float("inf"))
        q = _min_ms(run_q8, i, float("inf"))
        if i >= 2:
            best_bf16, best_q8, best_packed = min(best_bf16, b), min(best_q8, q), min(best_packed, p)
    packed_bytes = packed[0].nbytes if packed[0] is not None else 0
    return {
        "matrix": name,
        "shape": [n, k],
        "tokens": t,
        "bf16_ms": round(best_bf16, 3),
        "packed_ms": round(best_packed, 3),
        "q8_ms": round(best_q8, 3),
        "packed_speedup": round(best_bf16 / best_packed, 3),
        "speedup": round(best_bf16 / best_q8, 3),
        "bf16_gbs": round(dense[0].nbytes / best_bf16 / 1e6, 1),
        "packed_gbs": round(packed_bytes / best_packed / 1e6, 1),
        "q8_gbs": round(q8[0].nbytes / best_q8 / 1e6, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    if not cpu_build.available():
        raise SystemExit(f"the CPU kernels are not available: {cpu_build.build_error()}")
    rows = [_case(name, t, args.iters) for name in SHAPES for t in args.tokens]
    report = {
        "cpu_isa": cpu_build.active_level(),
        "cpu_model": cpu_build.cpu_model_name(),
        "threads": torch.get_num_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "rows": rows,
    }
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
