"""Preset shapes against the published byte counts (docs/model.md#sizes)."""

from __future__ import annotations

import pytest

from gpt_oss_desktop.engine.checkpoint import PRESETS, auto_shards, canonical_specs, checkpoint_bytes, get_preset
from gpt_oss_desktop.engine.errors import EngineError


def test_real_presets_match_the_published_sizes() -> None:
    # docs/model.md#sizes: checkpoint tensor bytes, 363 / 543 tensors
    assert checkpoint_bytes(PRESETS["20b"], "original") == 13_761_264_768
    assert checkpoint_bytes(PRESETS["120b"], "original") == 65_248_815_744
    assert len(canonical_specs(PRESETS["20b"], mxfp4=True)) == 363
    assert len(canonical_specs(PRESETS["120b"], mxfp4=True)) == 543
    assert checkpoint_bytes(PRESETS["20b"], "hf") == checkpoint_bytes(PRESETS["20b"], "original")


def test_presets_are_consistent() -> None:
    for name, cfg in PRESETS.items():
        assert cfg.sliding_layers == tuple(i % 2 == 0 for i in range(cfg.num_hidden_layers)), name
    mini, full = PRESETS["mini"], PRESETS["20b"]
    assert mini.replace(num_hidden_layers=24, sliding_layers=()) == full
    assert PRESETS["small"].vocab_size == 201088
    assert checkpoint_bytes(PRESETS["small"], "original") < 250e6
    assert auto_shards(PRESETS["tiny"], "original") == 1
    assert auto_shards(PRESETS["20b"], "original") == 7


def test_unknown_preset() -> None:
    with pytest.raises(EngineError, match="tiny"):
        get_preset("huge")
