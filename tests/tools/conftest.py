"""tools/ is not installed: load it from this checkout the way the engine's commands do, so tests import ``tools.…``."""

from __future__ import annotations

from gpt_oss_desktop.engine.cli.source_tools import import_tool

import_tool("bench", "the tests")
