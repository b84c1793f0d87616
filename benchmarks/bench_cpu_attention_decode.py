"""Benchmark the fused CPU decode attention (kernels.cpu_mxfp4.attention_decode) at gpt-oss's head shape; prints JSON.

    python benchmarks/bench_cpu_attention_decode.py [--contexts 512 8192 32768] [--threads 2] [--calls 12]

One full-attention layer's call for one sequence (64 query heads on 8 KV heads of 64 dims, bf16 cache), at each
instruction-set level this CPU has. Before every call a 512 MB read evicts the cache, as a decode step's weight
streams do between two layers, so the K/V rows come from memory. GB/s counts the K and V bytes the call reads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

# Runnable as a plain script from anywhere: the repository root holds the ``kernels`` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_oss_desktop.kernels import cpu_build, cpu_mxfp4

HQ, HKV, D = 64, 8, 64
FLUSH_FLOATS = 128 << 20  # 512 MB


def _case(context: int, calls: int, flush: torch.Tensor) -> dict[str, float]:
    gen = torch.Generator().manual_seed(context)
    q = torch.randn(1, HQ, D, generator=gen).bfloat16()
    k = torch.randn(1, context, HKV, D, generator=gen).bfloat16()
    v = torch.randn(1, context, HKV, D, generator=gen).bfloat16()
    sinks = torch.randn(HQ, generator=gen)
    slots = torch.zeros(1, dtype=torch.long)
    lengths = torch.full((1,), context, dtype=torch.long)
    samples = []
    for _ in range(calls):
        flush.sum()
        start = time.perf_counter()
        cpu_mxfp4.attention_decode(q, k, v, sinks, slots, lengths, 0, False, D**-0.5)
        samples.append(time.perf_counter() - start)
    median = statistics.median(samples)
    kv_bytes = 2 * context * HKV * D * 2
    return {"median_ms": round(median * 1e3, 3), "min_ms": round(min(samples) * 1e3, 3),
            "kv_gb_per_s": round(kv_bytes / median / 1e9, 2)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contexts", type=int, nargs="+", default=[512, 8192, 32768])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=12)
    args = parser.parse_args()
    if min(args.contexts) < 1 or args.threads < 1 or args.calls < 1:
        parser.error("--contexts, --threads and --calls take positive whole numbers")
    torch.set_num_threads(args.threads)
    flush = torch.ones(FLUSH_FLOATS)
    results: dict[str, object] = {}
    for level in cpu_build.supported_levels():
        status = cpu_build.load_level(level)
        if not status.ok:
            results[level] = {"error": status.reason}
            continue
        with cpu_build.use_level(level):
            results[level] = {str(n): _case(n, args.calls, flush) for n in args.contexts}
    report = {"cpu": cpu_build.cpu_model_name(), "threads": args.threads, "shape": f"Hq {HQ} Hkv {HKV} D {D} bf16",
              "levels": results}  # fmt: skip
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
