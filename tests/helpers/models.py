"""Small gpt-oss configs and models shared by engine tests."""

from __future__ import annotations

import torch

from gpt_oss_desktop.engine.checkpoint.synthetic import random_weights
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.model import Model

# Several layers (both window kinds), GQA (4 query heads over 2 KV heads), a small window so short prompts cross it.
ORACLE_CONFIG = ModelConfig(
    num_hidden_layers=3,
    num_experts=4,
    experts_per_token=2,
    vocab_size=384,
    hidden_size=64,
    intermediate_size=64,
    head_dim=16,
    num_attention_heads=4,
    num_key_value_heads=2,
    sliding_window=8,
)


def random_model(config: ModelConfig = ORACLE_CONFIG, seed: int = 0, dtype: torch.dtype = torch.float32) -> Model:
    """A model on random MXFP4 weights, built in memory (no checkpoint IO)."""
    return Model(config, random_weights(config, seed=seed), torch.device("cpu"), dtype)


def random_ids(count: int, vocab_size: int, seed: int = 0) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    return [int(t) for t in torch.randint(0, vocab_size, (count,), generator=generator).tolist()]
