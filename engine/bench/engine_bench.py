"""Benchmark of this engine on one checkpoint: load time, peak RSS, prefill and batch-1 decode speed."""

from __future__ import annotations

import gc
import logging
from functools import partial
from pathlib import Path
from typing import Any

import torch

from engine.bench.measure import current_rss_bytes, peak_rss_bytes, random_prompt, timed
from engine.loader import load_model

logger = logging.getLogger(__name__)


def run_engine_bench(
    model_path: Path,
    *,
    prompt_tokens: int = 512,
    decode_tokens: int = 32,
    dtype: torch.dtype = torch.bfloat16,
    threads: int | None = None,
) -> dict[str, Any]:
    """Measure the engine; every number comes from this run."""
    if threads is not None:
        torch.set_num_threads(threads)
    rss_before = current_rss_bytes()
    model, load_s = timed(lambda: load_model(model_path, dtype=dtype))
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
    token = int(torch.argmax(logits))
    step_times: list[float] = []
    for _ in range(decode_tokens):
        step_logits, step_s = timed(partial(model.decode, [token], cache, [0]))
        step_times.append(step_s)
        token = int(torch.argmax(step_logits[0]))
    # The first decode step pays one-off costs (page faults of cold experts); report steady state separately.
    steady = step_times[1:] or step_times
    return {
        "engine": "gpt-oss-desktop",
        "model": str(model_path),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "load_s": round(load_s, 3),
        "weights_bytes": model.nbytes,
        "rss_after_load_bytes": rss_after_load - rss_before,
        "peak_rss_bytes": peak_rss_bytes(),
        "prefill_tokens": prompt_tokens,
        "prefill_s": round(prefill_s, 4),
        "prefill_tok_s": round(prompt_tokens / prefill_s, 2),
        "decode_tokens": decode_tokens,
        "decode_tok_s": round(len(step_times) / sum(step_times), 3),
        "decode_steady_tok_s": round(len(steady) / sum(steady), 3),
        "decode_first_step_s": round(step_times[0], 4),
    }
