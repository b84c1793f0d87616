"""gpt-oss checkpoints: layout detection, validation, memory-mapped loading, writing and test-model generation.

Public API:
- :func:`load_checkpoint` -> :class:`LoadedCheckpoint` (canonical OpenAI names, file dtypes, zero-copy views)
- :func:`write_checkpoint`, :func:`quantize_mxfp4`, :func:`random_weights` / :class:`RandomWeights`
- :data:`PRESETS` / :func:`get_preset`, :class:`Layout`, :func:`canonical_specs`
"""

from gpt_oss_desktop.engine.checkpoint.mxfp4_quantize import quantize_mxfp4
from gpt_oss_desktop.engine.checkpoint.names import Layout, TensorSpec, canonical_specs
from gpt_oss_desktop.engine.checkpoint.presets import PRESETS, get_preset
from gpt_oss_desktop.engine.checkpoint.reader import LoadedCheckpoint, load_checkpoint, resolve_root
from gpt_oss_desktop.engine.checkpoint.synthetic import RandomWeights, random_tensor, random_weights
from gpt_oss_desktop.engine.checkpoint.writer import auto_shards, checkpoint_bytes, shard_file_names, write_checkpoint

__all__ = [
    "PRESETS",
    "Layout",
    "LoadedCheckpoint",
    "RandomWeights",
    "TensorSpec",
    "auto_shards",
    "canonical_specs",
    "checkpoint_bytes",
    "get_preset",
    "load_checkpoint",
    "quantize_mxfp4",
    "random_tensor",
    "random_weights",
    "resolve_root",
    "shard_file_names",
    "write_checkpoint",
]
