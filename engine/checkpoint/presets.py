"""Named model shapes for generated test checkpoints.

| preset | layers | hidden / inter | heads q/kv x dim | experts (top-k) | vocab | window | ~bytes (MXFP4) |
|---|---|---|---|---|---|---|---|
| tiny  | 2  | 64 / 64     | 4/2 x 16  | 4 (2)    | 512    | 8   | ~0.2 MB: unit tests |
| small | 4  | 256 / 256   | 8/2 x 32  | 8 (2)    | 201088 | 16  | ~211 MB: runs the real tokenizer; the two [V, H] |
|       |    |             |           |          |        |     | bf16 matrices dominate, everything else is ~3 MB |
| mini  | 4  | 2880 / 2880 | 64/8 x 64 | 32 (4)   | 201088 | 128 | ~4.2 GB: 20b widths, kernel shapes at full size |
| 20b   | 24 | 2880 / 2880 | 64/8 x 64 | 32 (4)   | 201088 | 128 | 13.76 GB (docs/model.md#sizes) |
| 120b  | 36 | 2880 / 2880 | 64/8 x 64 | 128 (4)  | 201088 | 128 | 65.25 GB |

RoPE/YaRN and SwiGLU settings are the real ones (ModelConfig defaults) in every preset.
"""

from __future__ import annotations

from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.errors import EngineError

REAL_VOCAB = 201088

_20B = ModelConfig(
    num_hidden_layers=24,
    num_experts=32,
    experts_per_token=4,
    vocab_size=REAL_VOCAB,
    hidden_size=2880,
    intermediate_size=2880,
    head_dim=64,
    num_attention_heads=64,
    num_key_value_heads=8,
    sliding_window=128,
)

PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        num_hidden_layers=2,
        num_experts=4,
        experts_per_token=2,
        vocab_size=512,
        hidden_size=64,
        intermediate_size=64,
        head_dim=16,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=8,
    ),
    "small": ModelConfig(
        num_hidden_layers=4,
        num_experts=8,
        experts_per_token=2,
        vocab_size=REAL_VOCAB,
        hidden_size=256,
        intermediate_size=256,
        head_dim=32,
        num_attention_heads=8,
        num_key_value_heads=2,
        sliding_window=16,
    ),
    "mini": _20B.replace(num_hidden_layers=4, sliding_layers=()),
    "20b": _20B,
    "120b": _20B.replace(num_hidden_layers=36, num_experts=128, sliding_layers=()),
}


def get_preset(name: str) -> ModelConfig:
    """The preset's config; an :class:`EngineError` naming the choices for an unknown name."""
    try:
        return PRESETS[name]
    except KeyError:
        raise EngineError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
