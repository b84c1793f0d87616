"""One llama-bench round on a GGUF: prefill (pp<prompt>) and decode after a prompt (tg<decode> at depth <prompt>).

llama-bench runs every (prompt, gen) pair of one invocation at the same depth, so the two tests are two invocations:
``-p P -n 0`` (prefill from an empty cache, like the engine's prefill) and ``-p 0 -n N -d P`` (N decode steps after P
cached tokens, like the engine's decode after its prefill). Each invocation does its own warm-up run first and one
timed repetition; repetition across rounds is the caller's job, so both engines are sampled the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.bench.child_process import load_average, run_measured


def llama_bench_command(
    bench: Path, gguf: Path, *, threads: int, prompt: int, gen: int, depth: int, extra: Sequence[str] = ()
) -> list[str]:
    """The llama-bench command line; ``extra`` options (e.g. ``--repack 0``) go last."""
    return [
        str(bench),
        "-m", str(gguf),
        "-t", str(threads),
        "-p", str(prompt),
        "-n", str(gen),
        "-d", str(depth),
        "-r", "1",
        "-o", "json",
        *extra,
    ]  # fmt: skip


def parse_llama_bench_json(stdout: str) -> list[dict[str, Any]]:
    """llama-bench's ``-o json`` output: a JSON array of test records (anything logged before it is skipped)."""
    start = stdout.find("[")
    if start < 0:
        raise ValueError(f"no JSON array in llama-bench output: {stdout[-500:]!r}")
    records = json.loads(stdout[start:])
    if not isinstance(records, list) or not records:
        raise ValueError("llama-bench printed no test records")
    return [dict(record) for record in records]


class LlamaBenchCrash(RuntimeError):
    """llama-bench was killed by a signal (a crash inside ggml, not a usage error)."""


def _one_test(
    bench: Path, gguf: Path, *, threads: int, prompt: int, gen: int, depth: int, extra: Sequence[str]
) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = llama_bench_command(bench, gguf, threads=threads, prompt=prompt, gen=gen, depth=depth, extra=extra)
    done = run_measured(command, env=env)
    if done.returncode < 0:
        raise LlamaBenchCrash(f"llama-bench died of signal {-done.returncode}: {' '.join(command)}")
    if done.returncode != 0:
        raise RuntimeError(f"llama-bench failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    (record,) = parse_llama_bench_json(done.stdout)
    record["peak_rss_bytes"] = done.peak_rss_bytes
    record["wall_s"] = round(done.wall_s, 2)
    return record


def _test_with_fallback(
    bench: Path, gguf: Path, *, threads: int, prompt: int, gen: int, depth: int, extra: Sequence[str]
) -> tuple[dict[str, Any], str | None]:
    """One test; a crash with ggml's extra CPU buffer types on (repacked weights, AMX tiles) is retried once with
    ``--repack 0``: on this project's AMX machine ggml's AMX matmul segfaults on Q8_0 models. Returns the record and
    the crash that forced the retry (None when none did)."""
    try:
        return _one_test(bench, gguf, threads=threads, prompt=prompt, gen=gen, depth=depth, extra=extra), None
    except LlamaBenchCrash as crash:
        if "--repack" in extra:
            raise
        retry = [*extra, "--repack", "0"]
        record = _one_test(bench, gguf, threads=threads, prompt=prompt, gen=gen, depth=depth, extra=retry)
        return record, str(crash)


def run_llama_round(
    bench: Path, gguf: Path, *, threads: int, prompt_tokens: int, decode_tokens: int, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Prefill and decode speed, peak RSS and identification of one llama-bench round, in the engine's field names."""
    load_before = load_average()
    pp, pp_crash = _test_with_fallback(bench, gguf, threads=threads, prompt=prompt_tokens, gen=0, depth=0, extra=extra)
    tg, tg_crash = _test_with_fallback(
        bench, gguf, threads=threads, prompt=0, gen=decode_tokens, depth=prompt_tokens, extra=extra
    )
    return {
        "engine": "llama.cpp",
        "model": str(gguf),
        "model_type": pp.get("model_type"),
        "model_size_bytes": pp.get("model_size"),
        "threads": pp.get("n_threads"),
        "prefill_tokens": prompt_tokens,
        "prefill_tok_s": round(float(pp["avg_ts"]), 3),
        "decode_tokens": decode_tokens,
        "decode_depth": prompt_tokens,
        "decode_tok_s": round(float(tg["avg_ts"]), 3),
        # The larger of the two invocations' peaks: the decode one holds the prompt's KV cache too.
        "peak_rss_bytes": max(pp["peak_rss_bytes"], tg["peak_rss_bytes"]),
        "build_commit": pp.get("build_commit"),
        "build_number": pp.get("build_number"),
        "backends": pp.get("backends"),
        "cpu_info": pp.get("cpu_info"),
        # How llama.cpp held the weights: repacked copies for its CPU kernels (on by default) and mmap/load mode.
        "settings": {
            key: pp.get(key) for key in ("flash_attn", "repack", "load_mode", "n_batch", "n_ubatch", "type_k")
        },
        "crash_before_repack_off": [c for c in (pp_crash, tg_crash) if c is not None],
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }
