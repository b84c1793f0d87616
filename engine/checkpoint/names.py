"""Tensor names, expected shapes and the original <-> Hugging Face name mapping.

Canonical (in-memory) names are OpenAI's ``original/`` names (docs/model.md#original-layout); Hugging Face names:
docs/model.md#hugging-face-layout.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import torch

from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.kernels.mxfp4 import MXFP4_BLOCK

# Float dtypes a dense (non-MXFP4) tensor may have on disk; the model casts on use.
FLOAT_DTYPES: frozenset[torch.dtype] = frozenset({torch.bfloat16, torch.float16, torch.float32})
BYTE_DTYPES: frozenset[torch.dtype] = frozenset({torch.uint8})


class Layout(enum.Enum):
    """Which on-disk spelling a checkpoint uses."""

    ORIGINAL = "original"  # OpenAI original/ folder, MXFP4 experts
    HF_MXFP4 = "hf"  # Hugging Face repo root, MXFP4 experts (gate_up_proj_blocks, ...)
    HF_DENSE = "hf-dense"  # transformers save_pretrained, dense experts in transformers' orientation

    @property
    def mxfp4(self) -> bool:
        return self is not Layout.HF_DENSE


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Expected canonical shape and allowed dtypes of one tensor."""

    name: str
    shape: tuple[int, ...]
    dtypes: frozenset[torch.dtype]
    # dtypes.json label for the original layout
    label: str = "BF16"


def block_names(n: int, *, mxfp4: bool) -> list[str]:
    p = f"block.{n}."
    names = [
        p + "attn.norm.scale",
        p + "attn.qkv.weight",
        p + "attn.qkv.bias",
        p + "attn.sinks",
        p + "attn.out.weight",
        p + "attn.out.bias",
        p + "mlp.norm.scale",
        p + "mlp.gate.weight",
        p + "mlp.gate.bias",
    ]
    if mxfp4:
        names += [p + "mlp.mlp1_weight.blocks", p + "mlp.mlp1_weight.scales"]
    else:
        names.append(p + "mlp.mlp1_weight")
    names.append(p + "mlp.mlp1_bias")
    if mxfp4:
        names += [p + "mlp.mlp2_weight.blocks", p + "mlp.mlp2_weight.scales"]
    else:
        names.append(p + "mlp.mlp2_weight")
    names.append(p + "mlp.mlp2_bias")
    return names


def canonical_specs(config: ModelConfig, *, mxfp4: bool) -> dict[str, TensorSpec]:
    """Every canonical tensor of a model, in the order OpenAI's files list them (embedding, blocks, norm, unembed)."""
    h, v, e, i = config.hidden_size, config.vocab_size, config.num_experts, config.intermediate_size
    qkv = config.qkv_size
    f = FLOAT_DTYPES
    specs: list[TensorSpec] = [TensorSpec("embedding.weight", (v, h), f)]
    for n in range(config.num_hidden_layers):
        p = f"block.{n}."
        specs += [
            TensorSpec(p + "attn.norm.scale", (h,), f),
            TensorSpec(p + "attn.qkv.weight", (qkv, h), f),
            TensorSpec(p + "attn.qkv.bias", (qkv,), f),
            TensorSpec(p + "attn.sinks", (config.num_attention_heads,), f),
            TensorSpec(p + "attn.out.weight", (h, config.q_size), f),
            TensorSpec(p + "attn.out.bias", (h,), f),
            TensorSpec(p + "mlp.norm.scale", (h,), f),
            TensorSpec(p + "mlp.gate.weight", (e, h), f),
            TensorSpec(p + "mlp.gate.bias", (e,), f),
        ]
        if mxfp4:
            # groups of 32 run along the input dim: mlp1 input is H, mlp2 input is I
            specs += [
                TensorSpec(p + "mlp.mlp1_weight.blocks", (e, 2 * i, h // MXFP4_BLOCK, 16), BYTE_DTYPES, "FP4"),
                TensorSpec(p + "mlp.mlp1_weight.scales", (e, 2 * i, h // MXFP4_BLOCK), BYTE_DTYPES, "UE8"),
            ]
        else:
            specs.append(TensorSpec(p + "mlp.mlp1_weight", (e, 2 * i, h), f))
        specs.append(TensorSpec(p + "mlp.mlp1_bias", (e, 2 * i), f))
        if mxfp4:
            specs += [
                TensorSpec(p + "mlp.mlp2_weight.blocks", (e, h, i // MXFP4_BLOCK, 16), BYTE_DTYPES, "FP4"),
                TensorSpec(p + "mlp.mlp2_weight.scales", (e, h, i // MXFP4_BLOCK), BYTE_DTYPES, "UE8"),
            ]
        else:
            specs.append(TensorSpec(p + "mlp.mlp2_weight", (e, h, i), f))
        specs.append(TensorSpec(p + "mlp.mlp2_bias", (e, h), f))
    specs += [TensorSpec("norm.scale", (h,), f), TensorSpec("unembedding.weight", (v, h), f)]
    return {s.name: s for s in specs}


# ---------------------------------------------------------------------------------------------------- HF names
# canonical per-block suffix -> HF per-layer suffix, for tensors that map one-to-one (no reshaping)
_HF_BLOCK_DIRECT: dict[str, str] = {
    "attn.norm.scale": "input_layernorm.weight",
    "attn.sinks": "self_attn.sinks",
    "attn.out.weight": "self_attn.o_proj.weight",
    "attn.out.bias": "self_attn.o_proj.bias",
    "mlp.norm.scale": "post_attention_layernorm.weight",
    "mlp.gate.weight": "mlp.router.weight",
    "mlp.gate.bias": "mlp.router.bias",
    "mlp.mlp1_weight.blocks": "mlp.experts.gate_up_proj_blocks",
    "mlp.mlp1_weight.scales": "mlp.experts.gate_up_proj_scales",
    "mlp.mlp1_bias": "mlp.experts.gate_up_proj_bias",
    "mlp.mlp2_weight.blocks": "mlp.experts.down_proj_blocks",
    "mlp.mlp2_weight.scales": "mlp.experts.down_proj_scales",
    "mlp.mlp2_bias": "mlp.experts.down_proj_bias",
}
# dense experts: HF stores the transpose of the canonical [E, out, in] tensor
_HF_BLOCK_TRANSPOSED: dict[str, str] = {
    "mlp.mlp1_weight": "mlp.experts.gate_up_proj",
    "mlp.mlp2_weight": "mlp.experts.down_proj",
}
_HF_GLOBAL: dict[str, str] = {
    "embedding.weight": "model.embed_tokens.weight",
    "norm.scale": "model.norm.weight",
    "unembedding.weight": "lm_head.weight",
}
HF_QKV_PARTS: tuple[str, ...] = ("q_proj", "k_proj", "v_proj")

_BLOCK_RE = re.compile(r"^block\.(\d+)\.(.+)$")
_HF_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


@dataclass(frozen=True, slots=True)
class HfSource:
    """How one canonical tensor is assembled from HF tensors.

    kind: "direct" (same tensor), "transpose" (swap the last two dims), "concat" (rows of ``names`` stacked).
    """

    kind: str
    names: tuple[str, ...]


def hf_source(canonical: str) -> HfSource:
    """The HF tensor(s) a canonical tensor comes from."""
    if canonical in _HF_GLOBAL:
        return HfSource("direct", (_HF_GLOBAL[canonical],))
    m = _BLOCK_RE.match(canonical)
    if m is None:
        raise KeyError(canonical)
    n, rest = m.group(1), m.group(2)
    prefix = f"model.layers.{n}."
    if rest in _HF_BLOCK_DIRECT:
        return HfSource("direct", (prefix + _HF_BLOCK_DIRECT[rest],))
    if rest in _HF_BLOCK_TRANSPOSED:
        return HfSource("transpose", (prefix + _HF_BLOCK_TRANSPOSED[rest],))
    if rest in ("attn.qkv.weight", "attn.qkv.bias"):
        leaf = rest.rsplit(".", 1)[1]
        return HfSource("concat", tuple(f"{prefix}self_attn.{part}.{leaf}" for part in HF_QKV_PARTS))
    raise KeyError(canonical)


def hf_part_shapes(config: ModelConfig, canonical: str, shape: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """Expected shapes of the HF tensors feeding ``canonical`` (whose canonical shape is ``shape``)."""
    src = hf_source(canonical)
    if src.kind == "direct":
        return (shape,)
    if src.kind == "transpose":
        return ((*shape[:-2], shape[-1], shape[-2]),)
    rows = (config.q_size, config.kv_size, config.kv_size)
    return tuple((r, *shape[1:]) for r in rows)


def layer_index(name: str) -> int | None:
    """Layer number of a canonical or HF tensor name, None for global tensors."""
    m = _BLOCK_RE.match(name) or _HF_LAYER_RE.match(name)
    return int(m.group(1)) if m else None
