"""Deterministic random gpt-oss weights (canonical names, MXFP4 experts) for test checkpoints.

Each tensor has its own generator seeded from ``(seed, name)``, so a tensor's values do not depend on which other
tensors were generated or in what order: :class:`RandomWeights` can hand them out lazily, one at a time, which is how
the 20b/120b presets are written without holding 13.8 / 65 GB in RAM.

Magnitudes are picked so a forward pass gives O(1) activations and non-degenerate logits:
- linear weights ~ N(0, 1/fan_in) (0.019 at the real width 2880), biases ~ N(0, 0.02);
- embedding ~ N(0, 1), norm scales ~ 1 + N(0, 0.05), sinks ~ N(0, 1);
- MXFP4 experts: uniformly random code bytes (rms of the FP4 table is ~2.93), scales chosen per matrix so
  ``2.93 * 2**(scale-127) * sqrt(fan_in) ~ 1``, jittered by one binade (-1, 0, +1) per group.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Mapping

import torch

from gpt_oss_desktop.engine.checkpoint.names import TensorSpec, canonical_specs
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.kernels.mxfp4 import FP4_VALUES, MXFP4_BLOCK, SCALE_BIAS

_FP4_RMS = math.sqrt(sum(v * v for v in FP4_VALUES) / len(FP4_VALUES))


def _generator(seed: int, name: str) -> torch.Generator:
    # crc32 is stable across processes (unlike hash()). The CPU generator (mt19937) keeps only the low 32 bits of
    # its seed, so seed and name are hashed together rather than packed side by side.
    g = torch.Generator()
    g.manual_seed(zlib.crc32(f"{seed}/{name}".encode()))
    return g


def _fan_in(spec: TensorSpec) -> int:
    return spec.shape[-1]


def random_tensor(spec: TensorSpec, seed: int, dtype: torch.dtype = torch.bfloat16) -> torch.Tensor:
    """The random value of one canonical tensor (see the module doc for the distributions)."""
    g = _generator(seed, spec.name)
    name, shape = spec.name, spec.shape
    if name.endswith(".blocks"):
        # Uniform random bytes, drawn four at a time as int32 (about 2x faster than uint8 draws; the last dim is 16
        # so the count divides by 4). randint's exclusive upper bound drops one int32 value in 2**32: negligible.
        words = torch.randint(-(2**31), 2**31 - 1, (math.prod(shape) // 4,), dtype=torch.int32, generator=g)
        return words.view(torch.uint8).view(shape)
    if name.endswith(".scales"):
        fan_in = shape[-1] * MXFP4_BLOCK
        base = SCALE_BIAS + round(-math.log2(_FP4_RMS * math.sqrt(fan_in)))
        jitter = torch.randint(-1, 2, shape, dtype=torch.int16, generator=g)
        return (jitter + base).clamp(0, 254).to(torch.uint8)
    if name.endswith((".norm.scale",)) or name == "norm.scale":
        return (1.0 + 0.05 * torch.randn(shape, generator=g)).to(dtype)
    if name.endswith(".sinks"):
        return torch.randn(shape, generator=g).to(dtype)
    if name == "embedding.weight":
        return torch.randn(shape, generator=g).to(dtype)
    if name.endswith(("bias",)):
        return (0.02 * torch.randn(shape, generator=g)).to(dtype)
    # weights: [..., out, in]
    return (torch.randn(shape, generator=g) / math.sqrt(_fan_in(spec))).to(dtype)


class RandomWeights(Mapping[str, torch.Tensor]):
    """Lazy mapping canonical name -> random tensor; each access regenerates (nothing is cached)."""

    def __init__(self, config: ModelConfig, seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> None:
        self.config = config
        self.seed = seed
        self.dtype = dtype
        self.specs = canonical_specs(config, mxfp4=True)

    def __getitem__(self, name: str) -> torch.Tensor:
        return random_tensor(self.specs[name], self.seed, self.dtype)

    def __contains__(self, name: object) -> bool:
        return name in self.specs  # Mapping's default __contains__ would generate the tensor

    def __iter__(self) -> Iterator[str]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)


def random_weights(config: ModelConfig, seed: int = 0, dtype: torch.dtype = torch.bfloat16) -> dict[str, torch.Tensor]:
    """All canonical tensors of ``config`` with MXFP4 experts, materialised (small presets only)."""
    return dict(RandomWeights(config, seed, dtype))
