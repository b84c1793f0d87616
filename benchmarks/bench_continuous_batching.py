"""Continuous batching (engine.continuous_batcher) at 1, 2, 4 and 8 concurrent streams against the same requests one
after another; prints JSON.

    .venv/bin/python benchmarks/bench_continuous_batching.py [--preset small | --model DIR] [--requests 16]
        [--prompt-tokens 64] [--new-tokens 64] [--rounds 3] [--max-batch 8] [--threads N]

- ``sequential``: every request through its own :class:`~engine.generator.Generator`, one after another on one
  worker thread (what a server without batching does with requests that arrive together).
- ``streams[c]``: ``c`` client threads, each submitting its next request to one
  :class:`~engine.continuous_batcher.ContinuousBatcher` as soon as its previous one is done (closed loop), until all
  ``--requests`` are served. A fresh batcher per measurement, so no prompt is found in a cache from an earlier one.

Every request is greedy with no stop token, so each produces exactly ``--new-tokens`` tokens in every mode (the
report checks that every mode produced the same tokens). Aggregate tok/s = all generated tokens / wall time. TTFT is
``Done.time_to_first_token``: from submission (queueing included) to the first token; p50/p99 by nearest rank.

Each round measures every mode once, in turn, so a slow spell of a shared machine hits all of them; per mode the
report gives the round with the best (shortest) wall time, and the median over rounds of the per-round speed-up
against sequential, with the load average before every round.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

# Runnable as a plain script from anywhere: the repository root holds the ``tools`` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_oss_desktop.engine.checkpoint import PRESETS
from gpt_oss_desktop.engine.continuous_batcher import ContinuousBatcher
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.loader import load_model
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.sampling import SamplingParams
from tools.bench.child_process import load_average
from tools.bench.measure import cpu_kernel_report, random_prompt, report_on_checkpoint

logger = logging.getLogger("bench_continuous_batching")

CONCURRENCY = (1, 2, 4, 8)
SEQUENTIAL = "sequential"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def run_sequential(
    model: Model, prompts: list[list[int]], params: SamplingParams, context: int
) -> tuple[float, list[Done]]:
    """Wall seconds for every request one after another, and their Dones (in request order).

    On a worker thread, as the batcher's loop runs: on a busy 2-core machine, two-thread kernel calls from the main
    thread were measured up to 8x slower than the same calls from a worker thread (an OpenMP team's waiting policy),
    which would flatter the batcher."""
    dones: list[Done] = []

    def client() -> None:
        for prompt in prompts:
            done = list(Generator(model, max_context=context).stream(prompt, params))[-1]
            assert isinstance(done, Done)
            dones.append(done)

    worker = threading.Thread(target=client)
    started = time.perf_counter()
    worker.start()
    worker.join()
    wall = time.perf_counter() - started
    assert len(dones) == len(prompts)
    return wall, dones


def run_streams(
    model: Model, prompts: list[list[int]], params: SamplingParams, context: int, concurrency: int, max_batch: int
) -> tuple[float, list[Done]]:
    """Wall seconds for ``concurrency`` closed-loop clients to get every request served by one batcher."""
    batcher = ContinuousBatcher(model, max_batch=max_batch, max_waiting=len(prompts), max_context=context)
    batcher.start()
    dones: list[Done | None] = [None] * len(prompts)
    next_index = iter(range(len(prompts)))
    take = threading.Lock()

    def client() -> None:
        while True:
            with take:
                index = next(next_index, None)
            if index is None:
                return
            for event in batcher.submit(prompts[index], params).events():
                if isinstance(event, Done):
                    dones[index] = event

    clients = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    wall = time.perf_counter() - started
    batcher.close()
    finished = [d for d in dones if d is not None]
    assert len(finished) == len(prompts)
    return wall, finished


def summarise(wall: float, dones: list[Done]) -> dict[str, Any]:
    tokens = sum(d.completion_tokens for d in dones)
    ttft = [d.time_to_first_token for d in dones if d.time_to_first_token is not None]
    return {
        "wall_s": round(wall, 3),
        "tokens": tokens,
        "tok_s": round(tokens / wall, 2),
        "ttft_p50_ms": round(1000 * percentile(ttft, 50), 2),
        "ttft_p99_ms": round(1000 * percentile(ttft, 99), 2),
    }


def run_bench(
    model_path: Path,
    *,
    requests: int,
    prompt_tokens: int,
    new_tokens: int,
    rounds: int,
    max_batch: int,
    dtype: torch.dtype,
) -> dict[str, Any]:
    model = load_model(model_path, dtype=dtype)
    # Ragged prompts (+0 %, +12.5 %, ... +87.5 %, repeating), as the prompts of real clients are.
    lengths = [prompt_tokens + (prompt_tokens * (i % 8)) // 8 for i in range(requests)]
    prompts = [random_prompt(n, model.config.vocab_size, seed=i) for i, n in enumerate(lengths)]
    context = max(lengths) + new_tokens + 1
    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, stop_tokens=frozenset())

    # Warm-up: first-touch page faults of the weights, the fused kernels' first calls, thread pools.
    run_sequential(model, prompts[:1], params, context)
    run_streams(model, prompts[: min(4, requests)], params, context, min(4, requests), max_batch)

    modes = [SEQUENTIAL, *(str(c) for c in CONCURRENCY)]
    results: dict[str, list[tuple[float, list[Done]]]] = {mode: [] for mode in modes}
    loads = []
    identical = True
    for round_index in range(rounds):
        loads.append(load_average())
        for mode in modes:
            if mode == SEQUENTIAL:
                outcome = run_sequential(model, prompts, params, context)
            else:
                outcome = run_streams(model, prompts, params, context, int(mode), max_batch)
            results[mode].append(outcome)
            reference = results[SEQUENTIAL][round_index][1]
            identical = identical and [d.completion_ids for d in outcome[1]] == [d.completion_ids for d in reference]
            logger.info("round %d %s: %.2f s", round_index, mode, outcome[0])

    def best(mode: str) -> dict[str, Any]:
        wall, dones = min(results[mode], key=lambda outcome: outcome[0])
        return summarise(wall, dones)

    sequential_best = best(SEQUENTIAL)
    streams = {}
    for c in CONCURRENCY:
        entry = best(str(c))
        per_round = [s[0] / b[0] for s, b in zip(results[SEQUENTIAL], results[str(c)], strict=True)]
        entry["speedup_vs_sequential"] = round(sequential_best["wall_s"] / entry["wall_s"], 3)
        entry["median_round_speedup"] = round(statistics.median(per_round), 3)
        streams[str(c)] = entry
    return {
        "engine": "gpt-oss-desktop",
        "model": str(model_path),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        **cpu_kernel_report(),
        "requests": requests,
        "prompt_tokens": sorted(set(lengths)),
        "new_tokens_per_request": new_tokens,
        "max_batch": max_batch,
        "rounds": rounds,
        "load_average_before_rounds": loads,
        "load_average_after": load_average(),
        "sequential": sequential_best,
        "streams": streams,
        "identical_tokens": identical,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="checkpoint folder")
    source.add_argument("--preset", choices=list(PRESETS), help="random-weight checkpoint shape (default small)")
    parser.add_argument("--requests", type=int, default=16, help="requests per measurement (default 16)")
    parser.add_argument("--prompt-tokens", type=int, default=64, help="shortest prompt (default 64)")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per request (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every mode (default 3)")
    parser.add_argument("--max-batch", type=int, default=8, help="the batcher's slots (default 8)")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if min(args.requests, args.prompt_tokens, args.new_tokens, args.rounds, args.max_batch) < 1:
        parser.error("--requests, --prompt-tokens, --new-tokens, --rounds and --max-batch must be positive")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options: dict[str, Any] = {
        "requests": args.requests,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "rounds": args.rounds,
        "max_batch": args.max_batch,
        "dtype": getattr(torch, args.dtype),
    }
    report = report_on_checkpoint(args.model, args.preset, lambda folder: run_bench(folder, **options), name="bench-cb")
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
