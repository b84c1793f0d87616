"""The whole model on the Triton backend (interpreter on CPU) equals the cpu backend, uncached and cached.

Which backend a device gets: tests/engine/test_ops.py.
"""

from __future__ import annotations

import pytest
import torch

from gpt_oss_desktop.engine.ops import BACKEND_ENV, CPU_OPS
from tests.helpers.models import ORACLE_CONFIG, random_ids, random_model

pytest.importorskip("triton")


@pytest.fixture
def triton_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "triton")


@pytest.mark.usefixtures("triton_env")
def test_triton_logits_equal_cpu_logits() -> None:
    ids = random_ids(2 * ORACLE_CONFIG.sliding_window + 3, ORACLE_CONFIG.vocab_size, seed=11)
    triton_model = random_model(seed=5)
    assert triton_model.ops.name == "triton"
    cpu_model = random_model(seed=5)
    cpu_model.ops = CPU_OPS
    torch.testing.assert_close(triton_model.logits(ids), cpu_model.logits(ids), rtol=1e-4, atol=1e-4)


@pytest.mark.usefixtures("triton_env")
def test_triton_cached_decode_equals_cpu() -> None:
    ids = random_ids(ORACLE_CONFIG.sliding_window + 6, ORACLE_CONFIG.vocab_size, seed=12)
    model = random_model(seed=6)
    reference = random_model(seed=6)
    reference.ops = CPU_OPS
    expected = reference.logits(ids)
    cache = model.new_cache(2, 64)
    got = [model.prefill(ids[:5], cache, 1)]
    for position in range(5, len(ids)):
        got.append(model.decode([ids[position]], cache, [1])[0])
    torch.testing.assert_close(torch.stack(got), expected[4:], rtol=1e-4, atol=1e-4)
