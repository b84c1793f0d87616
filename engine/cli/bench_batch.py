"""``gpt-oss-desktop-engine bench-batch --preset small`` (or ``--model DIR``): batched vs sequential decode
speed as JSON, from the harness in tools/bench/ (source checkout only)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import torch

from gpt_oss_desktop.engine.checkpoint import PRESETS
from gpt_oss_desktop.engine.cli.chat import add_weights_argument
from gpt_oss_desktop.engine.cli.source_tools import import_tool
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.model_ref import resolve_model_path


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench-batch",
        help="aggregate decode tok/s of N sequences batched vs one after another (JSON)",
        description="Decode N sequences as one batch and one after another; print both aggregate speeds as JSON.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="checkpoint folder (or 'demo')")
    source.add_argument(
        "--preset",
        choices=list(PRESETS),
        help="write a random-weight checkpoint of this shape to a temporary folder and use it (default: small)",
    )
    parser.add_argument("--sequences", type=int, default=3, help="sequences in the batch (default 3)")
    parser.add_argument("--prompt-tokens", type=int, default=128, help="shortest prompt; the others are longer")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per sequence (default 64)")
    parser.add_argument("--rounds", type=int, default=3, help="sequential/batched measurement rounds (default 3)")
    parser.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    add_weights_argument(parser)


def run(args: argparse.Namespace) -> int:
    run_batch_bench = import_tool("bench.batch_bench", "bench-batch").run_batch_bench
    report_on_checkpoint = import_tool("bench.measure", "bench-batch").report_on_checkpoint
    if min(args.sequences, args.prompt_tokens, args.new_tokens, args.rounds) < 1:
        raise EngineError("--sequences, --prompt-tokens, --new-tokens and --rounds must be positive")
    options: dict[str, Any] = {
        "sequences": args.sequences,
        "prompt_tokens": args.prompt_tokens,
        "new_tokens": args.new_tokens,
        "rounds": args.rounds,
        "dtype": getattr(torch, args.dtype),
        "threads": args.threads,
        "weights": args.weights,
    }
    model = None if args.model is None else resolve_model_path(args.model)
    report = report_on_checkpoint(
        model, args.preset, lambda folder: run_batch_bench(folder, **options), name="bench-batch"
    )
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0
