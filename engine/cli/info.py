"""``python -m gpt_oss_desktop.engine info DIR [--json]``: describe a checkpoint (layout, config, sizes, dtypes)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from gpt_oss_desktop.engine.checkpoint import LoadedCheckpoint, load_checkpoint
from gpt_oss_desktop.engine.demo.materialize import demo_label
from gpt_oss_desktop.engine.model_ref import resolve_model_path


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "info",
        help="describe a checkpoint folder",
        description="Validate a gpt-oss checkpoint and print its layout, config, sizes and dtypes.",
    )
    p.add_argument(
        "path", help="checkpoint folder (a Hub snapshot, its original/ folder, or HF files), or demo (the toy model)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def summarize(ckpt: LoadedCheckpoint) -> dict[str, Any]:
    """Plain-data description of a loaded checkpoint (what ``--json`` prints)."""
    dtypes: dict[str, dict[str, int]] = {}
    mxfp4_bytes = 0
    params = 0
    for name, t in ckpt.tensors.items():
        nbytes = t.numel() * t.element_size()
        d = dtypes.setdefault(str(t.dtype).removeprefix("torch."), {"tensors": 0, "bytes": 0})
        d["tensors"] += 1
        d["bytes"] += nbytes
        if name.endswith((".blocks", ".scales")):
            mxfp4_bytes += nbytes
        # a .blocks byte packs two weights; scales are not parameters
        params += 2 * t.numel() if name.endswith(".blocks") else 0 if name.endswith(".scales") else t.numel()
    config = dataclasses.asdict(ckpt.config)
    config["sliding_layers"] = list(ckpt.config.sliding_layers)
    return {
        "root": str(ckpt.root),
        "layout": ckpt.layout.value,
        "experts": "mxfp4" if ckpt.mxfp4 else "dense",
        "config": config,
        "files": [{"name": p.name, "bytes": p.stat().st_size} for p in ckpt.files],
        "file_bytes": ckpt.file_bytes,
        "tensor_bytes": ckpt.nbytes,
        "mxfp4_bytes": mxfp4_bytes,
        "other_bytes": ckpt.nbytes - mxfp4_bytes,
        "tensors": len(ckpt.tensors),
        "parameters": params,
        "dtypes": dtypes,
    }


def _gb(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit} ({n:,} bytes)"
    return f"{n:,} bytes"


def format_text(info: dict[str, Any]) -> str:
    cfg = info["config"]
    lines = [f"note        {info['note']}"] if "note" in info else []
    lines += [
        f"checkpoint  {info['root']}",
        f"layout      {info['layout']} ({info['experts']} experts)",
        f"model       {cfg['num_hidden_layers']} layers, hidden {cfg['hidden_size']}, "
        f"intermediate {cfg['intermediate_size']}, vocab {cfg['vocab_size']}",
        f"attention   {cfg['num_attention_heads']} q / {cfg['num_key_value_heads']} kv heads x {cfg['head_dim']}, "
        f"sliding window {cfg['sliding_window']} on layers "
        + (",".join(str(i) for i, s in enumerate(cfg["sliding_layers"]) if s) or "none"),
        f"experts     {cfg['num_experts']}, top-{cfg['experts_per_token']}, swiglu limit {cfg['swiglu_limit']}",
        f"rope        theta {cfg['rope_theta']:g}, yarn factor {cfg['rope_scaling_factor']:g} "
        f"(alpha {cfg['rope_ntk_alpha']:g}, beta {cfg['rope_ntk_beta']:g}), initial context "
        f"{cfg['initial_context_length']}, max context {cfg['max_context_length']}",
        f"parameters  {info['parameters']:,} in {info['tensors']} tensors",
        f"files       {len(info['files'])}, {_gb(info['file_bytes'])}",
    ]
    lines += [f"  {f['name']:<40} {f['bytes']:>16,}" for f in info["files"]]
    lines += [
        f"tensors     {_gb(info['tensor_bytes'])}",
        f"  mxfp4     {_gb(info['mxfp4_bytes'])}",
        f"  other     {_gb(info['other_bytes'])}",
        "dtypes",
    ]
    lines += [f"  {name:<9} {d['tensors']:>5} tensors {d['bytes']:>16,} bytes" for name, d in info["dtypes"].items()]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    path = resolve_model_path(args.path)
    info = summarize(load_checkpoint(path))
    label = demo_label(path)
    if label is not None:
        info["note"] = label
    print(json.dumps(info, indent=2) if args.json else format_text(info))
    return 0
