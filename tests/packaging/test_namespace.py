"""One import name: the wheel installs only ``gpt_oss_desktop``, and generic names stay free for other packages."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NAMESPACE = "gpt_oss_desktop"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy of the sources: setuptools writes build/ and *.egg-info beside the project it builds.
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    # tools/ too: it sits beside the package in a checkout, and the wheel must leave it out.
    for folder in ("app", "engine", "kernels", "resources", "tools"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("gpt_oss_desktop-*.whl")
    return built


def test_the_wheel_installs_exactly_one_top_level_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == {NAMESPACE}
    # The four folders arrive under the namespace, with the resources the app reads at run time.
    for package in ("app", "engine", "kernels", "resources"):
        assert f"{NAMESPACE}/{package}/__init__.py" in names
    assert f"{NAMESPACE}/resources/o200k_base.tiktoken" in names
    assert f"{NAMESPACE}/resources/demo/manifest.json" in names
    # The runtime only: materialising the demo ships, training it and the benchmarks (tools/) do not.
    assert f"{NAMESPACE}/engine/demo/materialize.py" in names
    # (engine/tools/ and app/tools/ are the tools the model calls, and do ship)
    assert not [n for n in names if n.startswith(("tools/", f"{NAMESPACE}/tools/")) or "/bench/" in n]
    assert f"{NAMESPACE}/engine/tools/python_sandbox.py" in names


def test_the_wheel_ships_the_cpu_kernels_sources(wheel: Path) -> None:
    # kernels/cpu_build.py compiles them on the user's machine at first run: every .cpp and .h must be installed.
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = sorted(p.name for p in (REPO / "kernels" / "cpu").iterdir() if p.suffix in (".cpp", ".h"))
    assert "extension.cpp" in sources and "common.h" in sources
    missing = [name for name in sources if f"{NAMESPACE}/kernels/cpu/{name}" not in names]
    assert missing == []


def test_the_wheel_declares_both_commands(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (entry_points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert "gpt-oss-desktop = gpt_oss_desktop.app.main:main" in text
    assert "gpt-oss-desktop-engine = gpt_oss_desktop.engine.cli:main" in text


def test_generic_names_are_not_ours() -> None:
    # `kernels`, `engine` and `app` are names other packages use (transformers imports Hugging Face's `kernels`).
    # The test process imports this project only as gpt_oss_desktop; the repository root is not on sys.path.
    assert str(REPO) not in [str(Path(p).resolve()) for p in sys.path if p]
    for generic in ("app", "engine", "kernels", "resources"):
        spec = importlib.util.find_spec(generic)
        if spec is not None and spec.origin is not None:
            assert Path(spec.origin).resolve().parent != REPO / generic, (
                f"{generic} resolves to the repository's folder"
            )


def test_hugging_face_kernels_is_importable_beside_us() -> None:
    pytest.importorskip("transformers")
    spec = importlib.util.find_spec("kernels")
    if spec is None:
        pytest.skip("Hugging Face's kernels package is not installed with this transformers")
    import kernels  # Hugging Face's

    assert hasattr(kernels, "get_kernel"), kernels.__file__
    from gpt_oss_desktop import kernels as ours

    assert Path(ours.__file__).resolve().parent == REPO / "kernels"
