"""``gpt-oss-desktop-engine bench --model DIR [--peer transformers]`` or ``bench --kernels``: speed as JSON, measured by
the harness in tools/bench/ (a source checkout's; an installed copy says so in one line)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from gpt_oss_desktop.engine.cli.chat import add_weights_argument
from gpt_oss_desktop.engine.cli.source_tools import SOURCE_ROOT, import_tool
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.model_ref import resolve_model_path


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("bench", help="measure load time, peak RSS, prefill and decode speed (JSON)")
    parser.add_argument("--model", help="checkpoint folder (optional with --kernels: adds full decode steps)")
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--decode-tokens", type=int, default=32)
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    add_weights_argument(parser)
    parser.add_argument(
        "--greedy-tokens",
        type=int,
        default=200,
        help="with --weights q8: greedy tokens of the drift comparison against bf16 (default 200; 0 skips it and "
        "the bf16 run)",
    )
    parser.add_argument(
        "--decode-context",
        type=int,
        nargs="+",
        default=[],
        metavar="TOKENS",
        help="also time decode after caches of these lengths (random keys/values, no prefill), e.g. 8192 32768",
    )
    parser.add_argument(
        "--peer",
        choices=("transformers",),
        action="append",
        default=[],
        help="also run a peer on the same checkpoint, in its own process, in this run",
    )
    kernels = parser.add_argument_group("kernel benchmark (--kernels)")
    kernels.add_argument(
        "--kernels", action="store_true", help="time each Triton kernel at gpt-oss shapes vs the memory roofline"
    )
    kernels.add_argument("--preset", default="20b", help="model shapes for --kernels (default 20b)")
    kernels.add_argument("--context", type=int, default=4096, help="cached tokens for decode attention")
    kernels.add_argument("--peak-gbs", type=float, help="peak memory bandwidth, GB/s (default: measured by a copy)")
    kernels.add_argument("--iters", type=int, default=100, help="timed runs per kernel (and decode steps)")
    kernels.add_argument(
        "--aot-targets",
        nargs="*",
        choices=("sm_80", "sm_89", "sm_90"),
        default=["sm_80", "sm_89", "sm_90"],
        help="GPU targets of the ahead-of-time compile report (none: skip it)",
    )
    kernels.add_argument("--aot-kernels", nargs="+", help="compile only these Triton kernels for the report")


# The peer's child process: safe-path mode (-P), so neither the working directory nor the script's folder joins
# sys.path, and the tools package loaded from its folder as in this process. With `python -m tools.…` from the
# checkout's root, the root was on sys.path and its `kernels/` folder shadowed Hugging Face's `kernels` package,
# which transformers imports when it is installed (it failed with "cannot import name 'CUDAProperties'").
_PEER_BOOTSTRAP = (
    "import sys; from gpt_oss_desktop.engine.cli.source_tools import import_tool; "
    "sys.exit(import_tool('bench.transformers_peer', 'bench --peer').main(sys.argv[1:]))"
)


def _run_peer(name: str, args: argparse.Namespace, model_path: Path) -> dict[str, Any]:
    command = [
        sys.executable,
        "-P",
        "-c",
        _PEER_BOOTSTRAP,
        "--model",
        str(model_path.resolve()),
        "--prompt-tokens",
        str(args.prompt_tokens),
        "--decode-tokens",
        str(args.decode_tokens),
        "--dtype",
        args.dtype,
    ]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=SOURCE_ROOT)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"engine": name, "error": tail[0]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _bf16_comparison(args: argparse.Namespace, model_path: Path, result: dict[str, Any]) -> dict[str, Any]:
    """The same benchmark with bf16 weights, in a child process of its own (its peak RSS is its own), against
    ``result``; the drift figures were measured in this process (``result["drift"]``)."""
    run_measured = import_tool("bench.child_process", "bench").run_measured
    command = [sys.executable, "-P", "-m", "gpt_oss_desktop.engine", "bench", "--model", str(model_path.resolve())]
    command += ["--prompt-tokens", str(args.prompt_tokens), "--decode-tokens", str(args.decode_tokens)]
    command += ["--dtype", args.dtype, "--weights", "bf16"]
    if args.threads is not None:
        command += ["--threads", str(args.threads)]
    done = run_measured(command, cwd=SOURCE_ROOT)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["(no output)"]
        return {"error": tail[0]}
    bf16 = json.loads(done.stdout)
    keys = ["decode_steady_tok_s", "decode_best_step_tok_s", "prefill_tok_s", "peak_rss_bytes", "rss_after_load_bytes"]
    keys.append("weights_bytes")
    return {
        "bf16": {key: bf16[key] for key in keys},
        "decode_speedup": round(result["decode_steady_tok_s"] / bf16["decode_steady_tok_s"], 3),
        "decode_best_step_speedup": round(result["decode_best_step_tok_s"] / bf16["decode_best_step_tok_s"], 3),
        "peak_rss_ratio": round(result["peak_rss_bytes"] / bf16["peak_rss_bytes"], 3),
        "weights_bytes_ratio": round(result["weights_bytes"] / bf16["weights_bytes"], 3),
    }


def run(args: argparse.Namespace) -> int:
    from gpt_oss_desktop.engine.checkpoint import load_checkpoint

    engine_bench = import_tool("bench.engine_bench", "bench")  # before any work: says so when tools/ is absent
    if args.kernels:
        return _run_kernels(args)
    if args.model is None:
        raise EngineError("--model is required (unless --kernels is given)")
    model_path = resolve_model_path(args.model)  # a folder, or "demo"
    if args.prompt_tokens <= 0 or args.decode_tokens <= 0 or any(c <= 0 for c in args.decode_context):
        raise EngineError("--prompt-tokens, --decode-tokens and --decode-context must be positive")
    if args.greedy_tokens < 0:
        raise EngineError("--greedy-tokens must not be negative")
    load_checkpoint(model_path)  # fail fast, with a typed error, on a bad folder
    result: dict[str, Any] = engine_bench.run_engine_bench(
        model_path,
        prompt_tokens=args.prompt_tokens,
        decode_tokens=args.decode_tokens,
        dtype=getattr(torch, args.dtype),
        threads=args.threads,
        contexts=args.decode_context,
        weights=args.weights,
        drift_tokens=args.greedy_tokens,
    )
    if args.weights != "bf16" and args.greedy_tokens > 0:
        result["vs_bf16"] = _bf16_comparison(args, model_path, result)
    if args.peer:
        peers = [_run_peer(name, args, model_path) for name in args.peer]
        report: dict[str, Any] = {"engine": result, "peers": peers, "vs": {}}
        for peer in peers:
            if "error" in peer:
                continue
            report["vs"][peer["engine"]] = {
                "decode_speedup": round(result["decode_steady_tok_s"] / peer["decode_steady_tok_s"], 3),
                "prefill_speedup": round(result["prefill_tok_s"] / peer["prefill_tok_s"], 3),
                "peak_rss_ratio": round(result["peak_rss_bytes"] / peer["peak_rss_bytes"], 3),
            }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


def _run_kernels(args: argparse.Namespace) -> int:
    run_kernel_bench = import_tool("bench.kernel_bench", "bench --kernels").run_kernel_bench
    model_path = resolve_model_path(args.model) if args.model is not None else None
    if model_path is not None:
        from gpt_oss_desktop.engine.checkpoint import load_checkpoint

        load_checkpoint(model_path)  # fail fast, with a typed error, on a bad folder
    report = run_kernel_bench(
        args.preset,
        iters=args.iters,
        context=args.context,
        peak_gbs=args.peak_gbs,
        model_path=model_path,
        aot_targets=tuple(args.aot_targets),
        aot_kernels=tuple(args.aot_kernels) if args.aot_kernels else None,
    )
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0
