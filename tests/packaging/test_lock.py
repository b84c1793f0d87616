"""The lock (requirements/constraints.txt) and pyproject.toml agree, and a CPU-only install carries no Triton."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "requirements" / "constraints.txt"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.!+-]*)", line.strip())
        assert match, f"not an exact pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{name} pinned twice"
        pins[name] = match.group(2)
    return pins


def _requirements(*groups: str) -> list[Requirement]:
    lines = list(PYPROJECT["dependencies"]) if "" in groups else []
    for group in groups:
        if group:
            lines += PYPROJECT["optional-dependencies"][group]
    return [Requirement(line) for line in lines]


def test_every_pin_is_exact_and_public() -> None:
    pins = _pins()
    # `pip freeze` writes torch==2.13.0+cpu; a local version would not match the CUDA or PyPI builds.
    assert not [f"{n}=={v}" for n, v in pins.items() if Version(v).local is not None]
    assert pins["torch"] == "2.13.0"


def test_every_direct_dependency_is_locked_within_its_range() -> None:
    pins = _pins()
    for requirement in _requirements("", "gpu", "test", "packaging"):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is a dependency but not in the lock"
        locked = pins[name]
        assert requirement.specifier.contains(locked, prereleases=True), f"lock {name}=={locked} ∉ {requirement}"


def test_triton_comes_only_with_the_gpu_and_test_extras() -> None:
    def names(*groups: str) -> set[str]:
        return {canonicalize_name(r.name) for r in _requirements(*groups)}

    assert "triton" not in names("")
    assert "triton" in names("gpu") and "triton" in names("test")
    # The CUDA build of torch 2.13.0 pins triton 3.7.1: the lock must hold with it on a GPU machine.
    assert _pins()["triton"] == "3.7.1"
