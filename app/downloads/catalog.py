"""The models the wizard offers, with sizes and memory needs derived from their configs (not typed in by hand)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from gpt_oss_desktop.engine.checkpoint import PRESETS, checkpoint_bytes
from gpt_oss_desktop.engine.config import ModelConfig

# The context the app allocates KV cache for (app.backends.local_engine.DEFAULT_CONTEXT; a test keeps the two equal).
KV_CONTEXT_TOKENS: Final = 16384
# Activations, the CUDA context / allocator slack, the tokenizer: what a run needs beyond weights and KV cache.
RUNTIME_MARGIN_BYTES: Final = 512 * 1024**2
BF16_BYTES: Final = 2


def kv_cache_bytes(config: ModelConfig, context: int = KV_CONTEXT_TOKENS) -> int:
    """Bytes of bf16 K and V for one chat of ``context`` tokens: sliding layers keep only their window."""
    return config.kv_cache_bytes(context, BF16_BYTES)


@dataclass(frozen=True)
class CatalogModel:
    """A model the wizard can download.

    Attributes:
        key: stable id ("gpt-oss-20b"), also the display name.
        repo_id: the Hub repo.
        config: its architecture (the engine's preset of the same shape).
        weight_files: the ``original/`` weight files the repo holds (docs/model.md#hub-repository-files).
        weight_bytes: tensor bytes of those files (safetensors headers add a few kB).
        summary: one line for the wizard.
    """

    key: str
    repo_id: str
    config: ModelConfig
    weight_files: tuple[str, ...]
    weight_bytes: int
    summary: str

    @property
    def download_bytes(self) -> int:
        """What the download writes to disk: the weights plus config.json, dtypes.json (and the index)."""
        return self.weight_bytes + 64 * 1024

    @property
    def sharded(self) -> bool:
        return len(self.weight_files) > 1

    @property
    def memory_needed(self) -> int:
        """Memory to run it: the packed MXFP4 weights as they are on disk, one chat's KV cache and a margin."""
        return self.weight_bytes + kv_cache_bytes(self.config) + RUNTIME_MARGIN_BYTES


def _catalog_model(key: str, repo_id: str, preset: str, shards: int, summary: str) -> CatalogModel:
    config = PRESETS[preset]
    files = (
        ("original/model.safetensors",)
        if shards == 1
        else tuple(f"original/model--{k:05d}-of-{shards:05d}.safetensors" for k in range(1, shards + 1))
    )
    return CatalogModel(key, repo_id, config, files, checkpoint_bytes(config, "original"), summary)


CATALOG: Final[tuple[CatalogModel, ...]] = (
    _catalog_model(
        "gpt-oss-20b", "openai/gpt-oss-20b", "20b", 1, "21B parameters (3.6B active): fast, fits a 16 GB GPU."
    ),
    _catalog_model(
        "gpt-oss-120b", "openai/gpt-oss-120b", "120b", 7, "117B parameters (5.1B active): needs an 80 GB GPU."
    ),
)


def catalog_model(key: str, catalog: tuple[CatalogModel, ...] = CATALOG) -> CatalogModel:
    for model in catalog:
        if model.key == key:
            return model
    raise KeyError(f"unknown model {key!r}; choose one of {', '.join(m.key for m in catalog)}")
