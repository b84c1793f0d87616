"""Shared measurement helpers for the benchmarks (timing, peak RSS, a fixed random prompt)."""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import torch

T = TypeVar("T")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(peak if sys.platform == "darwin" else peak * 1024)


def current_rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * resource.getpagesize()


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Run ``fn`` and return its result and wall seconds."""
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def timed_greedy_decode(first_token: int, steps: int, step: Callable[[int], torch.Tensor]) -> list[float]:
    """Wall seconds of each of ``steps`` batch-1 greedy decode steps from ``first_token``: ``step(token)`` feeds one
    token to the model and returns the next token's logits (shape (vocab,))."""
    token = first_token
    step_times: list[float] = []
    for _ in range(steps):
        logits, step_s = timed(partial(step, token))
        step_times.append(step_s)
        token = int(torch.argmax(logits))
    return step_times


def cpu_kernel_report() -> dict[str, Any]:
    """Which fused CPU kernels ran: ``cpu_isa`` (the instruction-set level, e.g. ``"avx512"``, or None when the torch
    path ran instead, with ``cpu_kernels`` saying why) and the CPU's model name."""
    from gpt_oss_desktop.engine import ops
    from gpt_oss_desktop.kernels import cpu_build

    enabled = ops.cpu_fused_enabled()
    status = cpu_build.status()
    return {
        "cpu_isa": cpu_build.active_level() if enabled else None,
        "cpu_kernels": status.summary() if status is not None else "not prepared",
        "cpu_model": cpu_build.cpu_model_name(),
    }


def random_prompt(length: int, vocab_size: int, seed: int = 0) -> list[int]:
    """Deterministic ordinary-token ids (below the harmony special range) for prefill measurements."""
    generator = torch.Generator().manual_seed(seed)
    high = min(vocab_size, 199998)
    return [int(t) for t in torch.randint(0, high, (length,), generator=generator).tolist()]


def speed_report(
    *,
    engine: str,
    model_path: Path,
    dtype: torch.dtype,
    load_s: float,
    rss_after_load_bytes: int,
    prompt_tokens: int,
    prefill_s: float,
    step_times: list[float],
) -> dict[str, Any]:
    """The JSON fields every benchmarked engine reports, computed the same way for all of them."""
    # The first decode step pays one-off costs (page faults of cold experts); report steady state separately.
    steady = step_times[1:] or step_times
    return {
        "engine": engine,
        "model": str(model_path),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "load_s": round(load_s, 3),
        "rss_after_load_bytes": rss_after_load_bytes,
        "peak_rss_bytes": peak_rss_bytes(),
        "prefill_tokens": prompt_tokens,
        "prefill_s": round(prefill_s, 4),
        "prefill_tok_s": round(prompt_tokens / prefill_s, 2),
        "decode_tokens": len(step_times),
        "decode_tok_s": round(len(step_times) / sum(step_times), 3),
        "decode_steady_tok_s": round(len(steady) / sum(steady), 3),
        # The fastest steady step: on a shared machine the mean also counts the steps another job's scheduler ticks
        # stretched, the minimum much less so.
        "decode_best_step_tok_s": round(1.0 / min(steady), 3),
        "decode_first_step_s": round(step_times[0], 4),
    }


def report_on_checkpoint(
    model: Path | None, preset: str | None, run: Callable[[Path], dict[str, Any]], *, name: str
) -> dict[str, Any]:
    """``run(folder)``'s report for the checkpoint folder ``model``, or, without one, for a random-weight checkpoint of
    ``preset`` (default ``small``, seed 0) written to a temporary folder for the run; the report then names the
    preset instead of that folder. ``name`` prefixes the temporary folder."""
    if model is not None:
        return run(model)
    from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset, write_checkpoint

    chosen = preset or "small"
    config = get_preset(chosen)
    with tempfile.TemporaryDirectory(prefix=f"{name}-{chosen}-") as folder:
        write_checkpoint(Path(folder), config, RandomWeights(config, 0), "original", 1)
        report = run(Path(folder))
    report["model"] = f"preset {chosen} (random weights, seed 0)"
    return report
