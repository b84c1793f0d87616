"""Model references: a checkpoint path, or the name of a built-in model (``demo``).

Every engine command and API that takes a model path resolves it here, so ``--model demo`` and
``engine.load_model("demo")`` work everywhere. Only the exact *string* ``"demo"`` is the name (a ``Path`` is
always a path), so a folder called ``demo`` in the current directory is reached as ``./demo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

DEMO_MODEL: Final = "demo"
"""The name of the built-in toy model (and of its folders: ``resources/demo``, ``<data>/models/demo-<version>``)."""


def is_builtin(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a built-in model rather than a path."""
    return isinstance(name_or_path, str) and name_or_path == DEMO_MODEL


def resolve_model_path(name_or_path: str | Path) -> Path:
    """The checkpoint folder for ``name_or_path``: ``demo`` is materialised on first use; a path is returned as is."""
    if is_builtin(name_or_path):
        from gpt_oss_desktop.engine.demo.materialize import materialize_demo  # deferred: pulls in torch and safetensors

        return materialize_demo()
    return Path(name_or_path)
