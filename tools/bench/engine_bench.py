"""Benchmark of this engine on one checkpoint: load time, peak RSS, prefill and batch-1 decode speed."""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gpt_oss_desktop.engine.loader import load_model
from gpt_oss_desktop.engine.model import Model
from tools.bench.measure import (
    cpu_kernel_report,
    current_rss_bytes,
    random_prompt,
    speed_report,
    timed,
    timed_greedy_decode,
)
from tools.bench.q8_drift import drift_report
from tools.bench.traffic import model_bytes_per_token

logger = logging.getLogger(__name__)


def run_engine_bench(
    model_path: Path,
    *,
    prompt_tokens: int = 512,
    decode_tokens: int = 32,
    dtype: torch.dtype = torch.bfloat16,
    threads: int | None = None,
    contexts: Sequence[int] = (),
    weights: str = "bf16",
    drift_tokens: int = 0,
) -> dict[str, Any]:
    """Measure the engine; every number comes from this run. ``contexts``: also time decode after caches of these
    lengths (see :func:`decode_at_context`). ``weights``: the load mode (engine.weights_mode).

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
    # What one of those decode steps must read (weights it touches, KV at the prompt's length): the numerator of
    # decode's memory-bandwidth roofline (benchmarks/bench_llama_cpp_peer.py divides the machine's read rate by it).
    report["decode_bytes_per_token"] = model_bytes_per_token(model, prompt_tokens)
    if contexts:
        del cache
        gc.collect()
        report["decode_at_context"] = [
            decode_at_context(model, context, decode_tokens, report["decode_steady_tok_s"]) for context in contexts
        ]
    report.update(cpu_kernel_report())
    if drift_tokens > 0 and weights != "bf16":
        reference = load_model(model_path, dtype=dtype)
        report["drift"] = drift_report(
            reference, model, random_prompt(32, model.config.vocab_size, seed=1), drift_tokens
        )
    return report


def decode_at_context(model: Model, context: int, decode_tokens: int, short_tok_s: float) -> dict[str, Any]:
    """Batch-1 decode speed after ``context`` cached tokens.

    The cache is filled with random keys and values instead of a prefill (a 32k-token prefill takes many minutes on
    a small CPU): decode reads every cached key of the full-attention layers and the newest ``sliding_window`` of the
    sliding ones whatever they hold, so its speed does not depend on the values, only on the length.
    """
    cache = model.new_cache(1, context + decode_tokens + 1)
    cache.reserve(0, context)
    generator = torch.Generator().manual_seed(context)
    shape = (context, model.config.num_key_value_heads, model.config.head_dim)
    for layer in range(model.config.num_hidden_layers):
        keys = torch.randn(shape, generator=generator).to(model.dtype)
        values = torch.randn(shape, generator=generator).to(model.dtype)
        cache.write(layer, 0, 0, keys, values)
    cache.commit(0, random_prompt(context, model.config.vocab_size, seed=context))
    step_times = timed_greedy_decode(1, decode_tokens, lambda token: model.decode([token], cache, [0])[0])
    steady = step_times[1:] or step_times
    tok_s = len(steady) / sum(steady)
    return {
        "context_tokens": context,
        "decode_steady_tok_s": round(tok_s, 3),
        "vs_short_prompt": round(tok_s / short_tok_s, 3),
        "kv_cache_bytes": cache.nbytes,
    }
