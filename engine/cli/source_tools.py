"""The developer tools (``tools/``: benchmarks, demo-model training) exist beside the package in a source checkout only.

An installed copy (wheel, bundle) has no ``tools/``: a command that needs it says so in one line. The package is
loaded from its folder under the name ``tools`` without putting the repository root on ``sys.path``, so the
repository's generic folder names (``kernels``, ``engine``, ``app``) never shadow other packages.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Final

from gpt_oss_desktop.engine.errors import EngineError

# engine/cli/source_tools.py -> the repository root in a checkout; inside an install, the gpt_oss_desktop folder.
SOURCE_ROOT: Final = Path(__file__).resolve().parents[2]
TOOLS_PACKAGE: Final = "tools"


class ToolsUnavailable(EngineError):
    """This copy of the engine has no ``tools/`` folder (it is installed, not a source checkout)."""


def tools_dir() -> Path:
    return SOURCE_ROOT / TOOLS_PACKAGE


def import_tool(module: str, command: str) -> ModuleType:
    """Import ``tools.<module>`` (e.g. ``bench.engine_bench``) for the engine command ``command``.

    Raises :class:`ToolsUnavailable` when this copy has no ``tools/``.
    """
    _load_package(command)
    return importlib.import_module(f"{TOOLS_PACKAGE}.{module}")


def _load_package(command: str) -> None:
    init = tools_dir() / "__init__.py"
    loaded = sys.modules.get(TOOLS_PACKAGE)
    if loaded is not None:
        if getattr(loaded, "__file__", None) and Path(str(loaded.__file__)).resolve() == init.resolve():
            return  # ours, already imported (or run as ``python -m tools.…`` from the checkout)
        raise ToolsUnavailable(f"`{command}` needs this checkout's tools/, but another package named tools is loaded")
    if not init.is_file():
        raise ToolsUnavailable(
            f"`{command}` runs from a source checkout only (this installed copy has no tools/ folder); "
            "clone the repository and run it there"
        )
    spec = importlib.util.spec_from_file_location(TOOLS_PACKAGE, init, submodule_search_locations=[str(init.parent)])
    assert spec is not None and spec.loader is not None  # a file location always gives a loader
    package = importlib.util.module_from_spec(spec)
    sys.modules[TOOLS_PACKAGE] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[TOOLS_PACKAGE]
        raise
