"""load_model reports progress per layer and stops when its progress callback raises LoadCancelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt_oss_desktop.engine.checkpoint import RandomWeights, get_preset, write_checkpoint
from gpt_oss_desktop.engine.errors import LoadCancelled
from gpt_oss_desktop.engine.loader import load_model


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    config = get_preset("tiny")
    write_checkpoint(folder, config, RandomWeights(config, 0), "original", 1)
    return folder


def test_progress_rises_to_one_with_a_step_per_layer(checkpoint: Path) -> None:
    seen: list[tuple[float, str]] = []
    model = load_model(checkpoint, on_progress=lambda fraction, text: seen.append((fraction, text)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    layers = model.config.num_hidden_layers
    assert sum(text.startswith("Loading layer") for _, text in seen) >= layers


def test_raising_load_cancelled_from_progress_stops_the_load(checkpoint: Path) -> None:
    calls = 0

    def cancel_at_second_layer(_fraction: float, text: str) -> None:
        nonlocal calls
        calls += 1
        if text == "Loading layer 2 of 2" or calls > 3:
            raise LoadCancelled("stop")

    with pytest.raises(LoadCancelled):
        load_model(checkpoint, on_progress=cancel_at_second_layer)
