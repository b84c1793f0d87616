"""Decode's memory-bandwidth roofline for the llama.cpp peer benchmark (benchmarks/bench_llama_cpp_peer.py).

A batch-1 decode step reads every weight it uses once, so no engine can decode faster than the machine's read rate
divided by the bytes of one step. Both sides are measured against that limit, on the same machine in the same run:
the machine's read rate by a streaming reduction over a buffer far larger than the caches, the engine's bytes from
its loaded model (tools/bench/traffic.py, model_bytes_per_token), llama.cpp's from the tensors of its GGUF file.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gpt_oss_desktop.engine.config import ModelConfig
from tools.bench.peer_summary import spread
from tools.bench.traffic import kv_read_bytes

READ_PROBE_BYTES = 1 << 30  # far above any CPU's last-level cache


def read_bandwidth_gbs(threads: int, nbytes: int = READ_PROBE_BYTES, repeats: int = 5) -> float:
    """The best of ``repeats`` streaming reads of ``nbytes`` (``torch.amax`` over fp32, ``threads`` threads), GB/s.

    A max-reduction does one compare per 4 bytes, far below what a core can do, so it runs at the memory's read rate:
    on the AMD EPYC (Zen 4) VM of the first measurement, a hand-written AVX-512 loop (four accumulators) read the same
    ~30 GB/s on 2 threads, and both moved between ~28 and ~60 GB/s from minute to minute with the other tenants' load.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        buffer = torch.ones(nbytes // 4, dtype=torch.float32)  # written once, so every page is mapped before timing
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            torch.amax(buffer)
            best = min(best, time.perf_counter() - started)
        del buffer
    finally:
        torch.set_num_threads(previous)
    return nbytes / best / 1e9


@dataclass(frozen=True)
class GgufTensor:
    name: str
    shape: tuple[int, ...]  # GGUF order: the fastest-varying dimension first
    nbytes: int


_LIST_TENSORS = """
import json, sys
from gguf import GGUFReader
reader = GGUFReader(sys.argv[1])
print(json.dumps([[t.name, [int(d) for d in t.shape], int(t.n_bytes)] for t in reader.tensors]))
"""


def gguf_tensors(gguf: Path, converter: Path, python: str) -> list[GgufTensor]:
    """The tensors of a GGUF file, read by the gguf-py package that ships next to llama.cpp's converter (run in a
    child process with the converter's interpreter, which has the numpy gguf-py needs)."""
    env = {**os.environ, "PYTHONPATH": str(converter.parent / "gguf-py")}
    done = subprocess.run(
        [python, "-c", _LIST_TENSORS, str(gguf)], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not list the tensors of {gguf}: {done.stderr.strip()[-1000:]}")
    return [GgufTensor(name, tuple(shape), nbytes) for name, shape, nbytes in json.loads(done.stdout)]


def gguf_decode_bytes(tensors: list[GgufTensor], cfg: ModelConfig, context: int) -> int:
    """Bytes one llama.cpp batch-1 decode step reads: one row of the token embedding, ``k / E`` of each expert
    tensor (``*_exps``: the routed experts only), every other tensor whole, and its f16 KV cache at ``context``."""
    total = 0
    for tensor in tensors:
        if tensor.name == "token_embd.weight":
            total += tensor.nbytes // tensor.shape[-1]  # [H, V]: one of V rows
        elif "_exps." in tensor.name:
            total += tensor.nbytes * cfg.experts_per_token // tensor.shape[-1]  # [..., E]
        else:
            total += tensor.nbytes
    return total + kv_read_bytes(cfg, context, kv_bytes=2)


def roofline(bytes_per_token: Mapping[str, int], rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per side: bytes per step, the roofline speed ``read_gbs / bytes`` and each round's decode as a fraction of it.

    ``rounds``: each with ``side``, ``decode_tok_s`` and ``read_gbs_before`` (a probe run just before that round).
    The denominator is the median of all the probes: on a shared VM the read rate jumps for seconds at a time (31 to
    60 GB/s within one run of this benchmark), so one probe says little about the minute that follows it, while the
    median is the rate the run mostly had.
    """
    probes = [float(r["read_gbs_before"]) for r in rounds]
    read_gbs = statistics.median(probes)
    sides: dict[str, Any] = {}
    for side, nbytes in bytes_per_token.items():
        limit = read_gbs * 1e9 / nbytes
        sides[side] = {
            "bytes_per_token": nbytes,
            "roofline_tok_s": round(limit, 2),
            "fraction_of_roofline": spread([r["decode_tok_s"] / limit for r in rounds if r["side"] == side]),
        }
    return {"read_gbs": spread(probes), "sides": sides}
