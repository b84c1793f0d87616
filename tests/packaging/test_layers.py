"""The import contracts in pyproject.toml ([tool.importlinter]) hold for our code and fail when one is broken.

Each test runs the real ``lint-imports`` with the repository's own pyproject.toml over a copy of the package's Python
files in a temporary folder (laid out as ``gpt_oss_desktop/{app,engine,kernels,resources}``, as installed), so a
planted import never touches the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
FOLDERS = ("app", "engine", "kernels", "resources")
LAYERS = "app -> engine -> kernels: no import runs back up"
ENGINE_QT = "engine and kernels never import Qt"
APP_CORE_QT = "the app's Qt-free modules never import Qt"
ROOMS = "inside app/: each room imports only the rooms below it"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter (the test extra) is not installed")


def _copy_package(root: Path) -> Path:
    """Copies every .py file of the four folders under ``root/gpt_oss_desktop``; returns that folder."""
    package = root / "gpt_oss_desktop"  # no __init__.py: a namespace package, as setup.py installs it
    for folder in FOLDERS:
        for source in (REPO / folder).rglob("*.py"):
            target = package / folder / source.relative_to(REPO / folder)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return package


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH puts the copy ahead of the editable install (whose finder comes after the path finder), so the
    # contracts are checked against the copy.
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), str(PYPROJECT), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _broken(report: str) -> set[str]:
    return {line.removesuffix(" BROKEN").strip() for line in report.splitlines() if line.endswith(" BROKEN")}


def test_the_package_keeps_every_contract() -> None:
    # The installed package itself, as .ci/run checks it.
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout and not _broken(result.stdout)
    # It really read our code (a finder that hid the package would leave 0 files to analyse).
    analysed = int(result.stdout.split("Analyzed ")[1].split(" files")[0])
    assert analysed > 100


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_package(tmp_path_factory.mktemp("layers"))


def test_the_clean_copy_keeps_every_contract(package_copy: Path) -> None:
    result = _lint_imports(package_copy.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "broken"),
    [
        # The engine's Qt reaches the app's Qt-free modules too (backend imports the engine).
        ("engine/sampling.py", "import PySide6", {ENGINE_QT, APP_CORE_QT}),
        # (grimp draws no edge from a submodule's importer to its package's __init__, so only kernels break.)
        ("kernels/__init__.py", "import qasync", {ENGINE_QT}),
        ("app/history/store.py", "from PySide6 import QtCore", {APP_CORE_QT}),
        # Indirect: app.settings is a Qt module.
        ("app/chat/stats.py", "import gpt_oss_desktop.app.settings", {APP_CORE_QT}),
        # Through the engine, every room that uses engine.config now reaches backends, history's sibling, too.
        ("engine/config.py", "import gpt_oss_desktop.app.backends.chat_backend", {LAYERS, ROOMS}),
        ("kernels/__init__.py", "import gpt_oss_desktop.engine.errors", {LAYERS}),
        # Rooms inside app/: history is below chat; two rooms on one layer never import each other; the session is
        # below the window (and the window is Qt).
        ("app/history/export.py", "import gpt_oss_desktop.app.chat.conversation", {ROOMS}),
        ("app/downloads/plan.py", "import gpt_oss_desktop.app.history.errors", {ROOMS}),
        ("app/chat/chat_session.py", "import gpt_oss_desktop.app.shell.main_window", {ROOMS, APP_CORE_QT}),
    ],
)
def test_a_planted_import_breaks_its_contract(tmp_path: Path, module: str, planted: str, broken: set[str]) -> None:
    package = _copy_package(tmp_path)
    target = package / module
    assert target.exists(), module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{planted}  # planted by the test\n", encoding="utf-8")
    result = _lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert _broken(result.stdout) == broken, result.stdout
    # The report names the module that was changed.
    assert "gpt_oss_desktop." + module.removesuffix(".py").removesuffix("/__init__").replace("/", ".") in result.stdout


def test_the_qt_free_contract_lists_every_qt_free_app_module() -> None:
    # A new Qt-free module must join app-core-without-qt, or a Qt import could creep into it unnoticed.
    grimp = pytest.importorskip("grimp")
    contracts = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]
    listed = set(next(c for c in contracts if c["id"] == "app-core-without-qt")["source_modules"])
    # External packages become one node each ("PySide6"), as lint-imports sees them.
    graph = grimp.build_graph("gpt_oss_desktop.app", include_external_packages=True)
    qt_free = {
        module
        for module in graph.modules
        if module.startswith("gpt_oss_desktop.app.")
        and module.count(".") >= 3  # inside a room: app.main and app.settings are not rooms' modules
        and graph.find_children(module) == set()  # modules, not packages (their __init__ re-exports)
        and not any(graph.chain_exists(module, qt) for qt in ("PySide6", "qasync") if qt in graph.modules)
    }
    assert qt_free - listed == set(), "Qt-free modules missing from app-core-without-qt"
    assert listed - qt_free == set(), "listed modules that are not Qt-free modules"
