"""Benchmark of this engine on one checkpoint: load time, peak RSS, prefill and batch-1 decode speed."""

from __future__ import annotations

import gc
import logging
from pathlib import Path
from typing import Any

import torch

from gpt_oss_desktop.engine.loader import load_model
from tools.bench.measure import (
    cpu_kernel_report,
    current_rss_bytes,
    random_prompt,
    speed_report,
    timed,
    timed_greedy_decode,
)
from tools.bench.q8_drift import drift_report

logger = logging.getLogger(__name__)


def run_engine_bench(
    model_path: Path,
    *,
    prompt_tokens: int = 512,
    decode_tokens: int = 32,
    dtype: torch.dtype = torch.bfloat16,
    threads: int | None = None,
    weights: str = "bf16",
    drift_tokens: int = 0,
) -> dict[str, Any]:
    """Measure the engine; every number comes from this run. ``weights``: the load mode (engine.weights_mode).

    With ``drift_tokens`` and q8 weights, the bf16 model is loaded afterwards (the speed and RSS figures are taken
    by then) and ``drift`` compares the two over a 32-token prompt and that many greedy tokens
    (tools/bench/q8_drift.py).
    """
    if threads is not None:
        torch.set_num_threads(threads)
    rss_before = current_rss_bytes()
    model, load_s = timed(lambda: load_model(model_path, dtype=dtype, weights=weights))
    rss_after_load = current_rss_bytes()
    prompt = random_prompt(prompt_tokens, model.config.vocab_size)
    capacity = prompt_tokens + decode_tokens + 1

    # Warm-up on a short prompt so one-off allocations don't count against prefill.
    warm_cache = model.new_cache(1, capacity)
    model.prefill(prompt[:8], warm_cache)
    del warm_cache
    gc.collect()

    cache = model.new_cache(1, capacity)
    logits, prefill_s = timed(lambda: model.prefill(prompt, cache))
    step_times = timed_greedy_decode(
        int(torch.argmax(logits)), decode_tokens, lambda token: model.decode([token], cache, [0])[0]
    )
    report = speed_report(
        engine="gpt-oss-desktop",
        model_path=model_path,
        dtype=dtype,
        load_s=load_s,
        rss_after_load_bytes=rss_after_load - rss_before,
        prompt_tokens=prompt_tokens,
        prefill_s=prefill_s,
        step_times=step_times,
    )
    report["weights"] = weights
    report["weights_bytes"] = model.nbytes
    report.update(cpu_kernel_report())
    if drift_tokens > 0 and weights != "bf16":
        del cache, logits
        reference = load_model(model_path, dtype=dtype)
        report["drift"] = drift_report(
            reference, model, random_prompt(32, model.config.vocab_size, seed=1), drift_tokens
        )
    return report
