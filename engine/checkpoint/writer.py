"""Write gpt-oss checkpoints in the three on-disk layouts, streaming shard by shard.

Input is a mapping of canonical tensors whose experts are either MXFP4 (``*.blocks``/``*.scales``) or dense
(``mlp1_weight`` [E, 2I, H], ``mlp2_weight`` [E, H, I]); each layout gets what it needs (quantising or dequantising).
The mapping may be lazy (:class:`engine.checkpoint.synthetic.RandomWeights`): each tensor is fetched once, when its
shard is written, so peak memory is about one shard, not one model. (A lazy mapping should define a cheap
``__contains__``: the writer asks whether experts come as ``.blocks`` or dense.)
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from gpt_oss_desktop.engine.checkpoint.mxfp4_quantize import quantize_mxfp4
from gpt_oss_desktop.engine.checkpoint.names import (
    Layout,
    TensorSpec,
    canonical_specs,
    hf_part_shapes,
    hf_source,
)
from gpt_oss_desktop.engine.checkpoint.reader import CONFIG_NAME, DTYPES_NAME, INDEX_NAME, SINGLE_NAME
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.errors import CheckpointError
from gpt_oss_desktop.kernels.mxfp4 import dequantize_mxfp4

logger = logging.getLogger(__name__)

DEFAULT_MAX_SHARD_BYTES = 2 * 1024**3
_EXPERT_WEIGHTS = ("mlp.mlp1_weight", "mlp.mlp2_weight")


def _expert_base(name: str) -> str | None:
    """``block.N.mlp.mlp1_weight`` for any of its forms (dense, ``.blocks``, ``.scales``); None for other tensors."""
    for suffix in ("", ".blocks", ".scales"):
        if name.endswith(tuple(w + suffix for w in _EXPERT_WEIGHTS)):
            return name.removesuffix(suffix) if suffix else name
    return None


def _as_layout(layout: str | Layout) -> Layout:
    if isinstance(layout, Layout):
        return layout
    try:
        return Layout(layout)
    except ValueError:
        raise ValueError(f"unknown layout {layout!r}; choose one of {[x.value for x in Layout]}") from None


def shard_file_names(layout: Layout, shards: int) -> list[str]:
    """Names of ``shards`` files: original ``model--00001-of-0000n`` (1-based), HF ``model-00000-of-0000{n-1}``."""
    if shards == 1:
        return [SINGLE_NAME]
    if layout is Layout.ORIGINAL:
        return [f"model--{k + 1:05d}-of-{shards:05d}.safetensors" for k in range(shards)]
    return [f"model-{k:05d}-of-{shards - 1:05d}.safetensors" for k in range(shards)]


def checkpoint_bytes(config: ModelConfig, layout: str | Layout, dtype: torch.dtype = torch.bfloat16) -> int:
    """Tensor bytes :func:`write_checkpoint` will write for ``config`` in ``layout``."""
    return sum(_spec_bytes(s, dtype) for s in canonical_specs(config, mxfp4=_as_layout(layout).mxfp4).values())


def auto_shards(config: ModelConfig, layout: str | Layout, max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> int:
    """Shard count keeping each shard under ``max_shard_bytes`` (the writer holds one shard in memory)."""
    return max(1, math.ceil(checkpoint_bytes(config, layout) / max_shard_bytes))


def _spec_bytes(spec: TensorSpec, dtype: torch.dtype) -> int:
    itemsize = 1 if torch.uint8 in spec.dtypes else dtype.itemsize
    return math.prod(spec.shape) * itemsize


def _plan_shards(specs: list[TensorSpec], shards: int, dtype: torch.dtype) -> list[list[TensorSpec]]:
    """Split tensors, in file order, into ``shards`` runs of roughly equal bytes."""
    sizes = [_spec_bytes(s, dtype) for s in specs]
    target = sum(sizes) / shards
    plan: list[list[TensorSpec]] = [[] for _ in range(shards)]
    start = 0
    for spec, size in zip(specs, sizes, strict=True):
        # a tensor goes to the shard holding its midpoint, which keeps the order and balances the bytes
        plan[min(shards - 1, int((start + size / 2) // target))].append(spec)
        start += size
    if any(not part for part in plan):
        raise ValueError(f"cannot split {len(specs)} tensors into {shards} non-empty shards")
    return plan


def _get(weights: Mapping[str, torch.Tensor], name: str, shape: tuple[int, ...]) -> torch.Tensor:
    try:
        t = weights[name]
    except KeyError:
        raise ValueError(f"weights lack tensor {name!r}") from None
    if tuple(t.shape) != shape:
        raise ValueError(f"{name}: shape {tuple(t.shape)}, expected {shape} from the config")
    return t


def _expert_mxfp4(
    weights: Mapping[str, torch.Tensor], base: str, spec: TensorSpec
) -> tuple[torch.Tensor, torch.Tensor]:
    """(blocks, scales) of expert weight ``base`` (e.g. ``block.0.mlp.mlp1_weight``), quantising dense input."""
    e, rows, k = spec.shape  # dense [E, out, in]
    if f"{base}.blocks" in weights:
        blocks = _get(weights, f"{base}.blocks", (e, rows, k // 32, 16))
        scales = _get(weights, f"{base}.scales", (e, rows, k // 32))
        if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
            raise ValueError(f"{base}: MXFP4 blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
        return blocks, scales
    return quantize_mxfp4(_get(weights, base, spec.shape))


def _expert_dense(weights: Mapping[str, torch.Tensor], base: str, spec: TensorSpec, dtype: torch.dtype) -> torch.Tensor:
    """Dense [E, out, in] expert weight, dequantising MXFP4 input (exact in bf16/fp32)."""
    if f"{base}.blocks" in weights:
        blocks, scales = _expert_mxfp4(weights, base, spec)
        return dequantize_mxfp4(blocks, scales, dtype)
    return _get(weights, base, spec.shape).to(dtype)


def _float_out(
    weights: Mapping[str, torch.Tensor], spec: TensorSpec, dense_spec: TensorSpec | None, dtype: torch.dtype
) -> torch.Tensor:
    """A non-MXFP4 canonical tensor in the storage ``dtype`` (``dense_spec``: set for hf-dense expert weights)."""
    if dense_spec is not None:
        return _expert_dense(weights, dense_spec.name, dense_spec, dtype)
    return _get(weights, spec.name, spec.shape).to(dtype)


def _hf_tensors(config: ModelConfig, spec: TensorSpec, value: torch.Tensor) -> dict[str, torch.Tensor]:
    """Canonical tensor -> its HF tensor(s)."""
    src = hf_source(spec.name)
    if src.kind == "direct":
        return {src.names[0]: value}
    if src.kind == "transpose":
        # canonical [E, out, in] -> transformers [E, in, out]: gate_up_proj [E, H, 2I], down_proj [E, I, H]
        return {src.names[0]: value.transpose(-1, -2)}
    shapes = hf_part_shapes(config, spec.name, spec.shape)
    parts = torch.split(value, [s[0] for s in shapes], dim=0)  # qkv rows -> q | k | v
    return dict(zip(src.names, parts, strict=True))


def _existing_checkpoint_files(out: Path) -> list[Path]:
    return sorted([*out.glob("model*.safetensors"), *out.glob(INDEX_NAME)])


def write_checkpoint(
    out_dir: str | Path,
    config: ModelConfig,
    weights: Mapping[str, torch.Tensor],
    layout: str | Layout = "original",
    shards: int = 1,
    *,
    dtype: torch.dtype = torch.bfloat16,
    overwrite: bool = False,
) -> tuple[Path, ...]:
    """Write ``weights`` (canonical names) as a checkpoint folder; return the safetensors files written.

    Args:
        out_dir: folder to create/fill.
        config: the model config; tensor shapes are checked against it.
        weights: canonical tensors with MXFP4 or dense experts (may be a lazy mapping; each tensor is read once).
        layout: "original" (OpenAI), "hf" (transformers, MXFP4 experts) or "hf-dense" (transformers, dense experts in
            transformers' [E, in, out] orientation, the exact dequantised MXFP4 values when given MXFP4).
        shards: number of safetensors files; > 1 also writes model.safetensors.index.json.
        dtype: storage dtype of every non-MXFP4 tensor (and of hf-dense experts).
        overwrite: replace an existing checkpoint in ``out_dir`` (its model*.safetensors and index are deleted).
    """
    lay = _as_layout(layout)
    if shards < 1:
        raise ValueError(f"shards must be >= 1, got {shards}")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a float dtype, got {dtype}")
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    stale = _existing_checkpoint_files(out)
    if stale:
        if not overwrite:
            raise CheckpointError("folder already holds a checkpoint (pass overwrite / --force to replace it)", out)
        for p in stale:
            p.unlink()

    specs = canonical_specs(config, mxfp4=lay.mxfp4)
    dense = canonical_specs(config, mxfp4=False)
    names = shard_file_names(lay, shards)
    plan = _plan_shards(list(specs.values()), shards, dtype)
    weight_map: dict[str, str] = {}
    total = 0
    written: list[Path] = []
    # .blocks and .scales come from one fetch (or one quantisation); hold the pair until its second half is written
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for fname, part in zip(names, plan, strict=True):
        shard: dict[str, torch.Tensor] = {}
        for spec in part:
            base = _expert_base(spec.name)
            if base is not None and lay.mxfp4:
                if base not in pairs:
                    pairs[base] = _expert_mxfp4(weights, base, dense[base])
                    value = pairs[base][0 if spec.name.endswith(".blocks") else 1]
                else:
                    value = pairs.pop(base)[0 if spec.name.endswith(".blocks") else 1]
            else:
                value = _float_out(weights, spec, dense[base] if base is not None else None, dtype)
            out_tensors = {spec.name: value} if lay is Layout.ORIGINAL else _hf_tensors(config, spec, value)
            for tname, t in out_tensors.items():
                shard[tname] = t.contiguous()
        for tname, t in shard.items():
            weight_map[tname] = fname
            total += t.numel() * t.element_size()
        path = out / fname
        save_file(shard, str(path), metadata={"format": "pt"})
        logger.info("wrote %s (%d tensors)", path, len(shard))
        written.append(path)
        del shard  # release this shard before generating the next

    _write_json(out / CONFIG_NAME, _config_dict(config, lay, dtype))
    if lay is Layout.ORIGINAL:
        _write_json(out / DTYPES_NAME, {s.name: s.label for s in specs.values()})
    if shards > 1:
        _write_json(out / INDEX_NAME, {"metadata": {"total_size": total}, "weight_map": weight_map})
    return tuple(written)


def _config_dict(config: ModelConfig, layout: Layout, dtype: torch.dtype) -> dict[str, Any]:
    if layout is Layout.ORIGINAL:
        return config.to_original_dict()
    out = config.to_hf_dict(mxfp4=layout is Layout.HF_MXFP4)
    out["dtype"] = str(dtype).removeprefix("torch.")  # transformers >= 5 spelling; "auto" loading uses it
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
