"""engine.ops: which backend a device gets, its names (``cpu``, ``triton``; ``torch`` is the deprecated old name)."""

from __future__ import annotations

import logging

import pytest
import torch

from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.ops import BACKEND_ENV, BACKENDS, CPU_OPS, select_ops

CPU = torch.device("cpu")


def test_the_backends_are_named_for_what_they_are() -> None:
    assert BACKENDS == ("cpu", "triton")
    assert CPU_OPS.name == "cpu"


def test_a_cpu_device_gets_the_cpu_backend_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BACKEND_ENV, raising=False)
    assert select_ops(CPU) is CPU_OPS


def test_the_switch_names_the_cpu_backend(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(BACKEND_ENV, " CPU ")
    with caplog.at_level(logging.WARNING, logger="gpt_oss_desktop.engine.ops"):
        assert select_ops(CPU) is CPU_OPS
    assert caplog.records == []


def test_the_old_name_torch_still_works_and_says_it_is_deprecated(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(BACKEND_ENV, "torch")
    with caplog.at_level(logging.WARNING, logger="gpt_oss_desktop.engine.ops"):
        assert select_ops(CPU) is CPU_OPS
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == "GPTOSS_KERNELS=torch is deprecated: the backend is now called cpu"


def test_an_unknown_backend_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "cuda-magic")
    with pytest.raises(EngineError, match=r"GPTOSS_KERNELS='cuda-magic' is not a backend; choose one of cpu, triton"):
        select_ops(CPU)


def test_triton_on_a_cpu_tensor_needs_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("triton")
    monkeypatch.setenv(BACKEND_ENV, "triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(EngineError, match="CUDA"):
        select_ops(CPU)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert select_ops(CPU).name == "triton"
