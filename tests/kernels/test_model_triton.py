"""The whole model on the Triton path (interpreter on CPU) equals the torch path, uncached and cached."""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.ops import BACKEND_ENV, TORCH_OPS, select_ops
from tests.helpers.models import ORACLE_CONFIG, random_ids, random_model

pytest.importorskip("triton")


@pytest.fixture
def triton_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "triton")


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert select_ops(torch.device("cpu")) is TORCH_OPS
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert select_ops(torch.device("cpu")).name == "torch"
    monkeypatch.setenv(BACKEND_ENV, "cuda-magic")
    with pytest.raises(EngineError, match="not a backend"):
        select_ops(torch.device("cpu"))
    monkeypatch.setenv(BACKEND_ENV, "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(EngineError, match="CUDA"):
        select_ops(torch.device("cpu"))


@pytest.mark.usefixtures("triton_env")
def test_triton_logits_equal_torch_logits() -> None:
    ids = random_ids(2 * ORACLE_CONFIG.sliding_window + 3, ORACLE_CONFIG.vocab_size, seed=11)
    triton_model = random_model(seed=5)
    assert triton_model.ops.name == "triton"
    torch_model = random_model(seed=5)
    torch_model.ops = TORCH_OPS
    torch.testing.assert_close(triton_model.logits(ids), torch_model.logits(ids), rtol=1e-4, atol=1e-4)


@pytest.mark.usefixtures("triton_env")
def test_triton_cached_decode_equals_torch() -> None:
    ids = random_ids(ORACLE_CONFIG.sliding_window + 6, ORACLE_CONFIG.vocab_size, seed=12)
    model = random_model(seed=6)
    reference = random_model(seed=6)
    reference.ops = TORCH_OPS
    expected = reference.logits(ids)
    cache = model.new_cache(2, 64)
    got = [model.prefill(ids[:5], cache, 1)]
    for position in range(5, len(ids)):
        got.append(model.decode([ids[position]], cache, [1])[0])
    torch.testing.assert_close(torch.stack(got), expected[4:], rtol=1e-4, atol=1e-4)
