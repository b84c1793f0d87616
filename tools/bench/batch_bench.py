"""Benchmark of batched decode: N sequences decoded together versus the same N decoded one after another.

The effort comparison runs three requests as one batch (engine.batch_generator). This measures what that buys:

- ``decode``: model decode steps only. Batched: every step decodes all N slots of one cache in one
  ``Model.decode`` call. Sequential: each sequence gets its own single-slot cache and decodes alone. Aggregate
  tok/s = all decoded tokens / all decode time; ``median_step_ratio`` uses the median step instead of the total,
  which a few steps delayed by other processes on a shared machine do not move.
- ``end_to_end``: the real generators with greedy sampling and the harmony parser, prefill included:
  :class:`~engine.batch_generator.BatchGenerator` once versus :class:`~engine.generator.Generator` N times.
  Also checks that both produced identical tokens.

Stop tokens are disabled so every sequence produces exactly ``new_tokens`` tokens in both modes.
"""

from __future__ import annotations

import gc
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from gpt_oss_desktop.engine.batch_generator import BatchGenerator
from gpt_oss_desktop.engine.events import Done
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.loader import load_model
from gpt_oss_desktop.engine.model import Model
from gpt_oss_desktop.engine.sampling import SamplingParams
from tools.bench.measure import cpu_kernel_report, random_prompt

logger = logging.getLogger(__name__)


def prompt_lengths(base: int, sequences: int) -> list[int]:
    """Ragged prompt lengths around ``base`` (+0 %, +12.5 %, +25 %, ...), as prompts of a real batch would be."""
    return [base + (base * i) // 8 for i in range(sequences)]


def _decode_steps(model: Model, prompts: list[list[int]], new_tokens: int, batched: bool) -> list[float]:
    """Seconds of every decode step, greedy, starting from each prompt's prefill. Batched: ``new_tokens`` steps of
    ``len(prompts)`` tokens each; sequential: ``len(prompts) * new_tokens`` steps of one token."""
    capacity = max(len(p) for p in prompts) + new_tokens + 1
    steps: list[float] = []
    groups = [list(range(len(prompts)))] if batched else [[i] for i in range(len(prompts))]
    for group in groups:
        cache = model.new_cache(len(group), capacity)
        tokens = [int(torch.argmax(model.prefill(prompts[i], cache, slot))) for slot, i in enumerate(group)]
        slots = list(range(len(group)))
        for _ in range(new_tokens):
            started = time.perf_counter()
            logits = model.decode(tokens, cache, slots)  # [len(group), V]
            steps.append(time.perf_counter() - started)
            tokens = [int(t) for t in torch.argmax(logits, dim=-1).tolist()]
        del cache
        gc.collect()
    return steps


def _end_to_end(
    model: Model, prompts: list[list[int]], params: SamplingParams, batched: bool, max_context: int
) -> tuple[float, list[tuple[int, ...]]]:
    """Wall seconds to generate every completion, and the completions."""
    started = time.perf_counter()
    if batched:
        dones: dict[int, Done] = {}
        for index, event in BatchGenerator(model, max_context=max_context).stream(prompts, [params] * len(prompts)):
            if isinstance(event, Done):
                dones[index] = event
        completions = [dones[i].completion_ids for i in range(len(prompts))]
    else:
        completions = []
        for prompt in prompts:
            # A fresh generator per sequence: no prefix reuse between them, as in separate runs.
            events = list(Generator(model, max_context=max_context).stream(prompt, params))
            done = events[-1]
            assert isinstance(done, Done)
            completions.append(done.completion_ids)
    return time.perf_counter() - started, completions


def run_batch_bench(
    model_path: Path,
    *,
    sequences: int = 3,
    prompt_tokens: int = 128,
    new_tokens: int = 64,
    rounds: int = 3,
    dtype: torch.dtype = torch.bfloat16,
    threads: int | None = None,
    weights: str = "bf16",
) -> dict[str, Any]:
    """Measure batched versus sequential decode on one checkpoint; every number comes from this run.
    ``weights``: the load mode (engine.weights_mode).

    Each of ``rounds`` rounds measures sequential then batched, so a slow spell of a shared machine hits both modes
    rather than one; the report gives the totals over all rounds and the median of the per-round ratios.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    model = load_model(model_path, dtype=dtype, weights=weights)
    lengths = prompt_lengths(prompt_tokens, sequences)
    prompts = [random_prompt(n, model.config.vocab_size, seed=i) for i, n in enumerate(lengths)]
    max_context = max(lengths) + new_tokens + 1
    # Greedy, no stop tokens: every sequence runs exactly new_tokens, in both modes.
    params = SamplingParams(temperature=0.0, max_tokens=new_tokens, stop_tokens=frozenset())

    # Warm-up: first-touch page faults of the weights, one-off allocations, the fused kernels' first calls.
    _decode_steps(model, [p[:8] for p in prompts], 16, batched=True)
    _decode_steps(model, [prompts[0][:8]], 16, batched=False)

    sequential_steps: list[float] = []
    batched_steps: list[float] = []
    decode_ratios: list[float] = []
    end_to_end: list[tuple[float, float]] = []
    identical = True
    for _ in range(rounds):
        seq = _decode_steps(model, prompts, new_tokens, batched=False)
        bat = _decode_steps(model, prompts, new_tokens, batched=True)
        sequential_steps += seq
        batched_steps += bat
        decode_ratios.append(sum(seq) / sum(bat))  # same tokens in both modes: the ratio of times is the speed-up
        sequential_s, sequential_ids = _end_to_end(model, prompts, params, batched=False, max_context=max_context)
        batched_s, batched_ids = _end_to_end(model, prompts, params, batched=True, max_context=max_context)
        end_to_end.append((sequential_s, batched_s))
        identical = identical and batched_ids == sequential_ids

    total_tokens = rounds * sequences * new_tokens
    # On a shared machine a step now and then waits for a core another process holds (one OpenMP worker descheduled
    # while the other spins at the barrier: +300 ms); the median step is what a step costs when it gets the cores.
    median_sequential_ms = 1000 * statistics.median(sequential_steps)
    median_batched_ms = 1000 * statistics.median(batched_steps)
    sequential_e2e = sum(s for s, _ in end_to_end)
    batched_e2e = sum(b for _, b in end_to_end)
    return {
        "engine": "gpt-oss-desktop",
        "model": str(model_path),
        "dtype": str(dtype).removeprefix("torch."),
        "weights": weights,
        "threads": torch.get_num_threads(),
        **cpu_kernel_report(),
        "sequences": sequences,
        "prompt_tokens": lengths,
        "new_tokens_per_sequence": new_tokens,
        "rounds": rounds,
        "decode": {
            "sequential_tok_s": round(total_tokens / sum(sequential_steps), 2),
            "batched_tok_s": round(total_tokens / sum(batched_steps), 2),
            "ratio": round(sum(sequential_steps) / sum(batched_steps), 3),
            "ratio_per_round": [round(r, 3) for r in decode_ratios],
            "median_round_ratio": round(statistics.median(decode_ratios), 3),
            "sequential_median_step_ms": round(median_sequential_ms, 3),
            "batched_median_step_ms": round(median_batched_ms, 3),
            "median_step_ratio": round(sequences * median_sequential_ms / median_batched_ms, 3),
        },
        "end_to_end": {
            "sequential_s": round(sequential_e2e, 3),
            "batched_s": round(batched_e2e, 3),
            "sequential_tok_s": round(total_tokens / sequential_e2e, 2),
            "batched_tok_s": round(total_tokens / batched_e2e, 2),
            "ratio": round(sequential_e2e / batched_e2e, 3),
            "median_round_ratio": round(statistics.median(s / b for s, b in end_to_end), 3),
        },
        "identical_tokens": identical,
    }
