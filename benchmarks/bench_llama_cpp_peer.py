"""This engine against llama.cpp on the same random-weight gpt-oss checkpoint, on the CPU; prints JSON.

    .venv/bin/python benchmarks/bench_llama_cpp_peer.py [--preset mini | --model HF_DIR] [--threads 2] [--rounds 3]
        [--prompt-tokens 512] [--decode-tokens 32] [--isa native|avx2|avx512|avx512bf16] [--q8] [--jobs N]
        [--llama-bench-args "--repack 0"] [--cache-dir ~/.cache/gpt-oss-desktop/llama-cpp]

What it does (every step is cached under --cache-dir, so only the first run is slow):

1. Fetches ``llama-cpp-python``'s source distribution from PyPI and builds the llama.cpp it vendors (llama-bench,
   llama-quantize; ggml's CPU backend for --isa, -march=native by default). Several minutes on two cores, once.
2. Makes the checkpoint (``gpt-oss-desktop-engine make-test-model --layout hf --preset P``) unless --model is given,
   and converts it with llama.cpp's convert_hf_to_gguf.py: experts stay MXFP4, other matrices bf16 (as ggml-org's
   official gpt-oss GGUFs); tokenizer files come from the bundled o200k vocabulary. --q8 adds a Q8_0 conversion
   (non-expert matrices q8_0, experts still MXFP4), benchmarked as a third side, and the engine with ``--weights q8``
   (the same matrices 8-bit, kernels/q8.py) as a fourth; ``ratios`` then also has ``engine-q8/llama.cpp-q8_0``.
3. Alternates rounds: engine, llama.cpp[, llama.cpp q8_0], engine, ... each in its own process with --threads
   threads. Prefill is a --prompt-tokens prompt from an empty cache (llama-bench pp512); decode is --decode-tokens
   steps after that prompt (llama-bench tg32 at depth 512; the engine's steady-state steps after its prefill).

The JSON has per-side median and min-max, engine/llama.cpp ratios of the medians (above 1: the engine is faster, or
uses more memory for peak RSS) and of each side's best round (minimum-of-N time), peak RSS of each child process
(wait4's ru_maxrss for both sides), the kernels' ISA level and the CPU's flags, the CPU model and the load average
around every round, and ``roofline``: decode against the memory-bandwidth limit (the median of read-rate probes run
before every round, over the bytes one decode step of each side reads; tools/bench/decode_roofline.py). Not
run in CI: it compiles llama.cpp. On a shared machine, read the load averages before the ratios: llama.cpp's threads
spin while they wait for each other, so it loses more than the engine when other work takes its cores.

Where ggml's extra CPU buffer types crash (its AMX matmul segfaults on Q8_0 models on this project's AMX machine), a
test is rerun once with ``--repack 0`` and the JSON lists the crash under ``crashes_before_repack_off``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

# Runnable as a plain script from anywhere: the repository root holds the ``tools`` package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from gpt_oss_desktop.engine.vocab import bundled_vocab_path
from gpt_oss_desktop.kernels import cpu_build
from tools.bench.child_process import load_average, run_measured
from tools.bench.decode_roofline import gguf_decode_bytes, gguf_tensors, read_bandwidth_gbs, roofline
from tools.bench.gguf_convert import convert_to_gguf
from tools.bench.llama_bench_peer import run_llama_round
from tools.bench.llama_cpp_build import DEFAULT_CACHE, DEFAULT_VERSION, ISA_FLAGS, LlamaCppBuild, build_llama_cpp
from tools.bench.peer_summary import interleave, ratios, side_summary

REPO_ROOT = Path(__file__).resolve().parent.parent
logger = logging.getLogger("bench_llama_cpp_peer")

ENGINE = "engine"
ENGINE_Q8 = "engine-q8"  # the engine with --weights q8, the match for llama.cpp's Q8_0 side
LLAMA = "llama.cpp"
LLAMA_Q8 = "llama.cpp-q8_0"
# CPU flags worth naming next to the numbers (the ones either engine's kernels select on).
_REPORTED_FLAGS = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16",
                   "avx512_fp16", "avx512vbmi", "amx_tile", "amx_int8", "amx_bf16")  # fmt: skip
# What each round keeps in the JSON's "rounds" list (identification fields go in the sides' sections once).
_ROUND_FIELDS = ("prefill_tok_s", "decode_tok_s", "decode_all_steps_tok_s", "peak_rss_bytes",
                 "self_reported_peak_rss_bytes", "load_s", "load_average_before", "load_average_after",
                 "read_gbs_before")  # fmt: skip


def ensure_checkpoint(preset: str, cache: Path, seed: int) -> Path:
    """The generated ``preset`` checkpoint in the Hugging Face layout llama.cpp's converter reads (made once)."""
    out = cache / "models" / f"{preset}-seed{seed}"
    if (out / "config.json").is_file():
        return out
    logger.info("writing the %s checkpoint to %s", preset, out)
    command = [sys.executable, "-m", "gpt_oss_desktop.engine", "make-test-model", str(out), "--preset", preset,
               "--layout", "hf", "--seed", str(seed), "--force"]  # fmt: skip
    subprocess.run(command, check=True, cwd=REPO_ROOT, stdout=sys.stderr)  # stdout is for the JSON
    return out


def engine_round(
    model: Path, *, threads: int, prompt_tokens: int, decode_tokens: int, isa: str, weights: str = "bf16"
) -> dict[str, Any]:
    """One run of the engine's own benchmark (tools/bench/engine_bench.py) in a child process, with the given
    ``--weights`` load mode (no drift run: speed and memory only)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if isa != "native":
        env["GPTOSS_CPU_ISA"] = isa
    command = [sys.executable, "-m", "gpt_oss_desktop.engine", "bench", "--model", str(model), "--threads",
               str(threads), "--prompt-tokens", str(prompt_tokens), "--decode-tokens", str(decode_tokens),
               "--weights", weights, "--greedy-tokens", "0"]  # fmt: skip
    load_before = load_average()
    done = run_measured(command, env=env, cwd=REPO_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"engine bench failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    report = json.loads(done.stdout[done.stdout.index("{") :])
    return {
        "engine": "gpt-oss-desktop",
        "prefill_tokens": report["prefill_tokens"],
        "prefill_tok_s": report["prefill_tok_s"],
        "decode_tokens": report["decode_tokens"],
        # Steady state (the first step pays cold-expert page faults); llama-bench's tg follows a warm-up step too.
        "decode_tok_s": report["decode_steady_tok_s"],
        "decode_all_steps_tok_s": report["decode_tok_s"],
        "peak_rss_bytes": done.peak_rss_bytes,
        "self_reported_peak_rss_bytes": report["peak_rss_bytes"],
        "load_s": report["load_s"],
        "decode_bytes_per_token": report["decode_bytes_per_token"],
        "threads": report["threads"],
        "cpu_isa": report.get("cpu_isa"),
        "cpu_kernels": report.get("cpu_kernels"),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def compiler_isa_macros(build: LlamaCppBuild) -> list[str]:
    """The instruction-set macros g++ defines under -march=native (what a native build compiled for); explicit levels
    are named by their CMake flags instead."""
    if build.isa != "native":
        return []
    try:
        done = subprocess.run(["c++", "-march=native", "-dM", "-E", "-x", "c++", "/dev/null"], capture_output=True,
                              text=True, check=True)  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return []
    names = (line.split()[1] for line in done.stdout.splitlines() if line.startswith("#define __"))
    return sorted(n for n in names if n.startswith(("__AVX", "__AMX", "__FMA__", "__F16C__")))


def machine_report() -> dict[str, Any]:
    flags = cpu_build.cpu_flags()
    return {
        "cpu_model": cpu_build.cpu_model_name(),
        "cpu_flags": [f for f in _REPORTED_FLAGS if f in flags],
        "engine_supported_isa_levels": list(cpu_build.supported_levels()),
        "logical_cpus": os.cpu_count(),
        "load_average_start": load_average(),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", default="mini", help="generated checkpoint preset (default: mini)")
    source.add_argument("--model", type=Path, help="an existing Hugging Face-layout MXFP4 checkpoint instead")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated checkpoint")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per side (at least 3)")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument(
        "--isa",
        choices=list(ISA_FLAGS),
        default="native",
        help="llama.cpp build level; other than native it also forces the engine's kernels (GPTOSS_CPU_ISA)",
    )
    parser.add_argument(
        "--q8",
        action="store_true",
        help="also benchmark a Q8_0 GGUF (non-expert matrices q8_0) against the engine with --weights q8",
    )
    parser.add_argument("--llama-bench-args", default="", help='extra llama-bench options, e.g. "--repack 0"')
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--llama-cpp-python-version", default=DEFAULT_VERSION)
    parser.add_argument("--jobs", type=int, help="compile jobs for the llama.cpp build (default: all CPUs)")
    parser.add_argument("--python", default=sys.executable, help="interpreter for convert_hf_to_gguf.py")
    args = parser.parse_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    if args.threads < 1 or args.prompt_tokens < 1 or args.decode_tokens < 1:
        parser.error("--threads, --prompt-tokens and --decode-tokens must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_args(argv)
    cache: Path = args.cache_dir.expanduser()
    build = build_llama_cpp(cache, version=args.llama_cpp_python_version, isa=args.isa, jobs=args.jobs)
    model = args.model.expanduser() if args.model else ensure_checkpoint(args.preset, cache, args.seed)
    ggufs = {LLAMA: "bf16"}
    engines = {ENGINE: "bf16"}
    if args.q8:
        ggufs[LLAMA_Q8] = "q8_0"
        engines[ENGINE_Q8] = "q8"
    gguf_paths = {
        side: convert_to_gguf(
            model, converter=build.converter, cache=cache, vocab_path=bundled_vocab_path(), outtype=outtype,
            python=args.python,
        )
        for side, outtype in ggufs.items()
    }  # fmt: skip

    report: dict[str, Any] = {"machine": machine_report()}
    sides = [*engines, *gguf_paths]
    rounds: list[dict[str, Any]] = []  # the per-round numbers, in run order
    results: list[tuple[str, dict[str, Any]]] = []  # everything each round reported
    for index, side in interleave(sides, args.rounds):
        logger.info("round %d: %s", index + 1, side)
        read_gbs = read_bandwidth_gbs(args.threads)  # this round's roofline denominator
        if side in engines:
            result = engine_round(
                model, threads=args.threads, prompt_tokens=args.prompt_tokens, decode_tokens=args.decode_tokens,
                isa=args.isa, weights=engines[side],
            )  # fmt: skip
        else:
            result = run_llama_round(
                build.llama_bench, gguf_paths[side], threads=args.threads, prompt_tokens=args.prompt_tokens,
                decode_tokens=args.decode_tokens, extra=shlex.split(args.llama_bench_args),
            )  # fmt: skip
        result["read_gbs_before"] = round(read_gbs, 2)
        results.append((side, result))
        rounds.append({"round": index + 1, "side": side, **{k: result[k] for k in _ROUND_FIELDS if k in result}})
    report["machine"]["load_average_end"] = load_average()

    summaries = {side: side_summary([r for r in rounds if r["side"] == side]) for side in sides}
    first = {side: next(r for s, r in results if s == side) for side in sides}
    report["config"] = {
        "model": str(model),
        "preset": None if args.model else args.preset,
        "threads": args.threads,
        "rounds": args.rounds,
        "prompt_tokens": args.prompt_tokens,
        "decode_tokens": args.decode_tokens,
        "isa": args.isa,
        "llama_bench_args": args.llama_bench_args,
    }
    for side, weights in engines.items():
        report[side] = {
            "weights": weights,
            "cpu_isa": first[side]["cpu_isa"],
            "cpu_kernels": next(r for s, r in reversed(results) if s == side)["cpu_kernels"],  # the last round's
            "threads": first[side]["threads"],
            **summaries[side],
        }
    for side, path in gguf_paths.items():
        report[side] = {
            "gguf": str(path),
            "outtype": ggufs[side],
            "model_type": first[side]["model_type"],
            "model_size_bytes": first[side]["model_size_bytes"],
            "llama_cpp_python_version": build.version,
            "build_commit": first[side]["build_commit"],
            "backends": first[side]["backends"],
            "threads": first[side]["threads"],
            "settings": first[side]["settings"],
            # Tests that crashed with llama.cpp's extra CPU buffer types on and were rerun with --repack 0.
            "crashes_before_repack_off": sorted(
                {c for s, r in results if s == side for c in r["crash_before_repack_off"]}
            ),
            "cmake_isa_flags": list(ISA_FLAGS[build.isa]),
            "compiler_isa_macros": compiler_isa_macros(build),
            "build_s": build.build_s,
            **summaries[side],
        }
    pairs = [(ENGINE, side) for side in gguf_paths] + ([(ENGINE_Q8, LLAMA_Q8)] if args.q8 else [])
    report["ratios"] = {f"{a}/{b}": ratios(summaries[a], summaries[b]) for a, b in pairs}
    report["ratios_best_round"] = {f"{a}/{b}": ratios(summaries[a], summaries[b], best=True) for a, b in pairs}
    # Decode against the machine's read rate (the median of the probes run before the rounds).
    cfg = load_checkpoint(model).config
    step_bytes = {side: first[side]["decode_bytes_per_token"] for side in engines}
    for side, path in gguf_paths.items():
        step_bytes[side] = gguf_decode_bytes(gguf_tensors(path, build.converter, args.python), cfg, args.prompt_tokens)
    report["roofline"] = {
        **roofline(step_bytes, rounds),
        "read_probe": "best of 5 torch.amax over 1 GiB of fp32, --threads threads, before each round; median used",
    }
    report["rounds"] = rounds
    sys.stdout.write(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
