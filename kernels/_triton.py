"""The optional Triton import shared by every kernel module.

Triton ships wheels for Linux only. Without it every kernel module still imports (the torch references are the CPU
path) and the Triton wrappers raise a clear error naming :data:`TRITON_IMPORT_ERROR`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TRITON_IMPORT_ERROR: ImportError | None
try:
    import triton
    import triton.language as tl

    TRITON_IMPORT_ERROR = None
except ImportError as _error:  # pragma: no cover - exercised only on installs without triton
    triton = None
    tl = None
    TRITON_IMPORT_ERROR = _error

__all__ = ["TRITON_IMPORT_ERROR", "tl", "triton", "triton_jit"]


def triton_jit(fn: Callable[..., Any]) -> Any:
    """``triton.jit`` when Triton is installed; otherwise the plain function (never launched: wrappers raise)."""
    return triton.jit(fn) if triton is not None else fn
