"""``gpt-oss-desktop-engine make-test-model OUT --preset P --layout L``: write a random-weight gpt-oss checkpoint."""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from gpt_oss_desktop.engine.checkpoint import (
    PRESETS,
    RandomWeights,
    auto_shards,
    checkpoint_bytes,
    get_preset,
    write_checkpoint,
)
from gpt_oss_desktop.engine.checkpoint.names import Layout
from gpt_oss_desktop.engine.errors import EngineError

logger = logging.getLogger(__name__)

# Leave this much disk free on top of the checkpoint itself.
_DISK_MARGIN = 512 * 1024**2


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "make-test-model",
        help="write a gpt-oss checkpoint with deterministic random weights",
        description="Write a gpt-oss checkpoint with deterministic random weights (MXFP4 experts).",
    )
    p.add_argument("out", type=Path, help="output folder")
    p.add_argument("--preset", choices=list(PRESETS), default="tiny", help="model shape (default: tiny)")
    p.add_argument(
        "--layout", choices=[x.value for x in Layout], default="original", help="on-disk layout (default: original)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        help="number of safetensors files (default: enough to keep each under 2 GiB)",
    )
    p.add_argument("--force", action="store_true", help="replace a checkpoint already in OUT")


def run(args: argparse.Namespace) -> int:
    config = get_preset(args.preset)
    layout = Layout(args.layout)
    shards = args.shards if args.shards is not None else auto_shards(config, layout)
    if shards < 1:
        raise EngineError(f"--shards must be >= 1, got {shards}")
    out: Path = args.out.expanduser()
    if out.exists() and not out.is_dir():
        raise EngineError(f"{out}: exists and is not a folder")
    size = checkpoint_bytes(config, layout)
    probe = out if out.exists() else next((p for p in out.absolute().parents if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    if size + _DISK_MARGIN > free:
        raise EngineError(f"{out}: needs {size / 1e9:.2f} GB but only {free / 1e9:.2f} GB is free")
    started = time.perf_counter()
    files = write_checkpoint(out, config, RandomWeights(config, args.seed), layout, shards, overwrite=args.force)
    elapsed = time.perf_counter() - started
    print(
        f"wrote {args.preset} ({layout.value}, seed {args.seed}) to {out}: {len(files)} file(s), "
        f"{size / 1e6:,.1f} MB of tensors in {elapsed:.1f} s"
    )
    return 0
