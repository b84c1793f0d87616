"""How long a running stream stalls when a long prompt arrives at the continuous batcher, with the prompt prefilled
whole or in chunks between decode steps (engine.continuous_batcher, ``prefill_chunk``); prints JSON.

    .venv/bin/python benchmarks/bench_prefill_stall.py [--preset small | --model DIR] [--prompt-tokens 1024]
        [--chunks 0 256 128] [--rounds 3] [--threads N]

Per measurement: a fresh batcher; stream A (a 16-token prompt, greedy, no stop token) decodes; after its 8th decode
step a request B with a ``--prompt-tokens`` prompt arrives. Reported per chunk size (0 = whole prompt): A's longest gap
between two tokens while B is prefilled (what a user watching A sees), A's median gap before B arrived, and B's time
to first token.
Each round measures every chunk size once, in turn, so a slow spell of a shared machine hits all of them; the report
gives the median over rounds, min-max in brackets.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

# Runnable as a plain script from anywhere: the repository root holds the ``tools`` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_oss_desktop.engine.checkpoint import PRESETS
from gpt_oss_desktop.engine.continuous_batcher import ContinuousBatcher
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.loader import load_model
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.sampling import SamplingParams
from tools.bench.child_process import load_average
from tools.bench.measure import cpu_kernel_report, random_prompt, report_on_checkpoint

logger = logging.getLogger("bench_prefill_stall")

_STREAM_PROMPT = 16
_ARRIVE_AFTER = 8  # A's tokens before B arrives


class StepClock:
    """Forwards to the model and notes when each decode call returns: with stream A running, every decode step
    gives A one token, so the gaps between returns are the gaps between A's tokens."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.decode_ends: list[float] = []

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def new_cache(self, batch_size: int = 1, max_context: int | None = None) -> Any:
        return self.model.new_cache(batch_size, max_context)

    def prefill(self, token_ids: Sequence[int], cache: Any, slot: int = 0) -> torch.Tensor:
        return self.model.prefill(token_ids, cache, slot)

    def decode(self, token_ids: Sequence[int], cache: Any, slots: Sequence[int]) -> torch.Tensor:
        logits = self.model.decode(token_ids, cache, slots)
        self.decode_ends.append(time.perf_counter())
        return logits


def measure(model: Model, long_prompt: list[int], chunk: int | None, stream_tokens: int) -> dict[str, float]:
    """One run: A's token times and B's time to first token, with ``prefill_chunk=chunk``."""
    clock = StepClock(model)
    params = SamplingParams(temperature=0.0, max_tokens=stream_tokens, stop_tokens=frozenset())
    context = len(long_prompt) + stream_tokens + 1
    batcher = ContinuousBatcher(clock, max_batch=2, max_context=context, prefill_chunk=chunk)
    batcher.start()
    try:
        a = batcher.submit(random_prompt(_STREAM_PROMPT, model.config.vocab_size, seed=1), params)
        deadline = time.monotonic() + 600
        while len(clock.decode_ends) < _ARRIVE_AFTER and a.done is None and time.monotonic() < deadline:
            time.sleep(0.001)  # a benchmark's poll, not a test's: A's steps are what is measured
        b_submitted = time.perf_counter()
        b = batcher.submit(long_prompt, SamplingParams(temperature=0.0, max_tokens=4, stop_tokens=frozenset()))
        b_done = list(b.events(timeout=1200))[-1]
        assert isinstance(b_done, Done) and b_done.time_to_first_token is not None, b_done
        b_first = b.submitted + b_done.time_to_first_token
        a.cancel()
        list(a.events(timeout=1200))
    finally:
        batcher.close()
    ends = clock.decode_ends
    gaps_during = [t1 - t0 for t0, t1 in itertools.pairwise(ends) if t1 > b_submitted and t0 < b_first]
    before = [t1 - t0 for t0, t1 in itertools.pairwise(ends) if t1 <= b_submitted]
    return {
        "stream_longest_gap_s": max(gaps_during, default=0.0),
        "stream_gap_before_s": statistics.median(before) if before else 0.0,
        "long_prompt_ttft_s": b_first - b_submitted,
    }


def run_bench(model_path: Path, *, prompt_tokens: int, chunks: list[int], rounds: int) -> dict[str, Any]:
    model = load_model(model_path)
    long_prompt = random_prompt(prompt_tokens, model.config.vocab_size, seed=2)
    # Enough tokens for A to outlast B's whole prefill at ~2 decode steps per second.
    stream_tokens = 4096
    measure(model, long_prompt[:64], None, 16)  # warm-up: page faults of the weights, kernels' first calls
    results: dict[int, list[dict[str, float]]] = {c: [] for c in chunks}
    loads = []
    for round_index in range(rounds):
        loads.append(load_average())
        for chunk in chunks:
            results[chunk].append(measure(model, long_prompt, chunk or None, stream_tokens))
            logger.info("round %d chunk %d: %s", round_index, chunk, results[chunk][-1])

    def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
        return {
            key: [
                round(statistics.median(r[key] for r in runs), 3),
                [round(min(r[key] for r in runs), 3), round(max(r[key] for r in runs), 3)],
            ]
            for key in runs[0]
        }

    return {
        "engine": "gpt-oss-desktop",
        "model": str(model_path),
        "threads": torch.get_num_threads(),
        **cpu_kernel_report(),
        "prompt_tokens": prompt_tokens,
        "rounds": rounds,
        "load_average_before_rounds": loads,
        "load_average_after": load_average(),
        "by_prefill_chunk": {str(c) if c else "whole": summary(results[c]) for c in chunks},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", type=Path, help="checkpoint folder")
    source.add_argument("--preset", choices=list(PRESETS), help="random-weight checkpoint shape (default small)")
    parser.add_argument("--prompt-tokens", type=int, default=1024, help="the arriving prompt (default 1024)")
    parser.add_argument("--chunks", type=int, nargs="+", default=[0, 256, 128], help="0 = whole (default 0 256 128)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every chunk size (default 3)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if min(args.prompt_tokens, args.rounds) < 1 or min(args.chunks) < 0:
        parser.error("--prompt-tokens and --rounds must be positive, --chunks at least 0")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    options: dict[str, Any] = {"prompt_tokens": args.prompt_tokens, "chunks": args.chunks, "rounds": args.rounds}
    report = report_on_checkpoint(
        args.model, args.preset, lambda folder: run_bench(folder, **options), name="bench-stall"
    )
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
