"""Small gpt-oss configs and models shared by engine tests."""

from __future__ import annotations

from pathlib import Path

import torch

from gpt_oss_desktop.engine.checkpoint import RandomWeights, write_checkpoint
from gpt_oss_desktop.engine.checkpoint.presets import PRESETS
from gpt_oss_desktop.engine.checkpoint.synthetic import random_weights
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.model import Model

# The "tiny" preset's shapes: GQA (4 query heads over 2 KV heads), a small window (8) so short prompts cross it; with
# three layers, both window kinds (sliding_layers=() derives the pattern for them again).
ORACLE_CONFIG = PRESETS["tiny"].replace(num_hidden_layers=3, vocab_size=384, sliding_layers=())


def random_model(config: ModelConfig = ORACLE_CONFIG, seed: int = 0, dtype: torch.dtype = torch.float32) -> Model:
    """A model on random MXFP4 weights, built in memory (no checkpoint IO)."""
    return Model(config, random_weights(config, seed=seed), torch.device("cpu"), dtype)


def random_ids(count: int, vocab_size: int, seed: int = 0) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return [int(t) for t in torch.randint(0, vocab_size, (count,), generator=generator).tolist()]


def tiny_checkpoint(folder: Path) -> Path:
    """A random-weight ``tiny`` checkpoint (original layout, seed 0) written to ``folder``, for tests that load one."""
    config = PRESETS["tiny"]
    write_checkpoint(folder, config, RandomWeights(config, 0), "original", 1)
    return folder
