"""Shared fixtures: one set of tiny random weights written once per session in every layout."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.engine.checkpoint import PRESETS, random_weights, write_checkpoint
from gpt_oss_desktop.engine.config import ModelConfig

TINY: ModelConfig = PRESETS["tiny"]
SEED = 7


@pytest.fixture(scope="session")
def tiny_weights() -> dict[str, torch.Tensor]:
    return random_weights(TINY, seed=SEED)


@pytest.fixture(scope="session")
def written(tmp_path_factory: pytest.TempPathFactory, tiny_weights: dict[str, torch.Tensor]) -> dict[str, Path]:
    """Read-only checkpoints of ``tiny_weights`` in every layout (tests that break files make their own copies)."""
    base = tmp_path_factory.mktemp("layouts")
    out = {
        "original": base / "original-single",
        "original-sharded": base / "original-sharded",
        "hf": base / "hf-single",
        "hf-sharded": base / "hf-sharded",
        "hf-dense": base / "hf-dense",
        "hf-dense-sharded": base / "hf-dense-sharded",
        "snapshot": base / "snapshot",
    }
    write_checkpoint(out["original"], TINY, tiny_weights, "original")
    write_checkpoint(out["original-sharded"], TINY, tiny_weights, "original", shards=3)
    write_checkpoint(out["hf"], TINY, tiny_weights, "hf")
    write_checkpoint(out["hf-sharded"], TINY, tiny_weights, "hf", shards=3)
    write_checkpoint(out["hf-dense"], TINY, tiny_weights, "hf-dense")
    write_checkpoint(out["hf-dense-sharded"], TINY, tiny_weights, "hf-dense", shards=2)
    # Hub snapshot: HF files at the root and OpenAI's files under original/
    write_checkpoint(out["snapshot"], TINY, tiny_weights, "hf", shards=2)
    write_checkpoint(out["snapshot"] / "original", TINY, tiny_weights, "original", shards=2)
    return out
