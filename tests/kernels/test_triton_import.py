"""kernels._triton: triton is loaded only where a Triton kernel can run (a CUDA device, or asked for by name).

Each case runs in a fresh interpreter (``sys.modules`` of this test process already holds triton: tests/conftest.py
sets TRITON_INTERPRET=1 so the interpreter tests can run), with the variables that ask for Triton removed and
``CUDA_VISIBLE_DEVICES`` emptied so a GPU on the test machine reads as absent.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

_CPU_ENGINE = """
import sys

import torch

import gpt_oss_desktop.engine as engine
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.engine.generator import Generator
from gpt_oss_desktop.engine.harmony import ChatMessage, render_prompt
from gpt_oss_desktop.engine.ops import select_ops
from gpt_oss_desktop.engine.sampling import SamplingParams
from gpt_oss_desktop.kernels import rmsnorm

model = engine.load_model("demo", device="cpu")
prompt = render_prompt([ChatMessage.user("What is 2 + 3?")])
events = list(Generator(model, max_context=256).stream(prompt, SamplingParams(temperature=0.0, max_tokens=4)))
assert events, "the demo model produced nothing"
assert "triton" not in sys.modules, sorted(name for name in sys.modules if name.startswith("triton"))

# The Triton wrappers and the backend switch say why, instead of failing inside a missing module.
x = torch.ones(1, 8)
try:
    rmsnorm.rmsnorm(x, torch.ones(8))
except RuntimeError as error:
    print("kernel:", error)
import os

os.environ["GPTOSS_KERNELS"] = "triton"
try:
    select_ops(torch.device("cpu"))
except EngineError as error:
    print("backend:", error)
assert "triton" not in sys.modules
"""


def _env_without_triton_requests(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "GPTOSS_KERNELS")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["GPTOSS_DESKTOP_DATA_DIR"] = str(tmp_path / "data")
    return env


def _run(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # -P: the repository root stays off sys.path, as in every test run.
    return subprocess.run(
        [sys.executable, "-P", "-c", code], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_cpu_only_engine_run_never_imports_triton(tmp_path: Path) -> None:
    result = _run(_CPU_ENGINE, _env_without_triton_requests(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    kernel = next(line for line in lines if line.startswith("kernel:"))
    backend = next(line for line in lines if line.startswith("backend:"))
    assert "triton is not loaded: no CUDA device" in kernel and "use rmsnorm_ref instead" in kernel
    assert "GPTOSS_KERNELS=triton: triton is not loaded" in backend


@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="triton not installed (the 'gpu' extra)")
@pytest.mark.parametrize("request_var", [("GPTOSS_KERNELS", "triton"), ("TRITON_INTERPRET", "1")])
def test_asking_for_triton_by_name_loads_it(tmp_path: Path, request_var: tuple[str, str]) -> None:
    env = _env_without_triton_requests(tmp_path)
    name, value = request_var
    env[name] = value
    code = (
        "import sys\n"
        "from gpt_oss_desktop.kernels import _triton, rmsnorm\n"
        "assert 'triton' in sys.modules and _triton.TRITON_IMPORT_ERROR is None\n"
        "assert rmsnorm.triton is not None\n"
    )
    result = _run(code, env)
    assert result.returncode == 0, result.stderr
