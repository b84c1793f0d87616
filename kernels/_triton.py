"""The Triton import shared by every kernel module: loaded only where Triton kernels can run.

Triton is about 1 GB and only runs on a GPU (or in its interpreter), so it is imported only when one of these holds
when the kernel modules are first imported:

- a CUDA device is present (``torch.cuda.is_available()``);
- ``GPTOSS_KERNELS=triton`` asks for the Triton backend;
- ``TRITON_INTERPRET=1`` asks for Triton's interpreter (how the tests run the kernels on a CPU).

Otherwise, and on installs without the package (it is the ``gpu`` extra), ``triton`` and ``tl`` are ``None``: every
kernel module still imports (the torch references are the CPU path, and the kernels stay plain functions), and the
Triton wrappers raise a clear error naming :data:`TRITON_IMPORT_ERROR`. On a CPU-only machine this keeps triton's
native library out of the process entirely.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

import torch

logger = logging.getLogger(__name__)

# The backend switch read by engine.ops as well (kept here so the kernels never import the engine).
BACKEND_ENV = "GPTOSS_KERNELS"
INTERPRET_ENV = "TRITON_INTERPRET"


def triton_wanted() -> str | None:
    """Why Triton should be loaded in this process, or None when nothing here can run a Triton kernel."""
    if os.environ.get(BACKEND_ENV, "").strip().lower() == "triton":
        return f"{BACKEND_ENV}=triton"
    if os.environ.get(INTERPRET_ENV) == "1":
        return f"{INTERPRET_ENV}=1"
    if torch.cuda.is_available():
        return "a CUDA device is present"
    return None


# The modules, or None where Triton is not loaded (typed Any: the kernels use them only where they are modules).
triton: Any = None
tl: Any = None
TRITON_IMPORT_ERROR: ImportError | None
_reason = triton_wanted()
if _reason is None:
    TRITON_IMPORT_ERROR = ImportError(
        f"triton is not loaded: no CUDA device here (set {BACKEND_ENV}=triton or {INTERPRET_ENV}=1 before start "
        "to load it anyway)"
    )
else:
    try:
        import triton as _triton_module
        import triton.language as _language_module
    except ImportError as _error:  # pragma: no cover - exercised only on installs without triton
        TRITON_IMPORT_ERROR = ImportError(
            f"triton is not installed ({_error}); install the 'gpu' extra: pip install 'gpt-oss-desktop[gpu]'"
        )
        TRITON_IMPORT_ERROR.__cause__ = _error
    else:
        triton, tl = _triton_module, _language_module
        TRITON_IMPORT_ERROR = None
        logger.debug("triton %s loaded (%s)", triton.__version__, _reason)

__all__ = ["BACKEND_ENV", "INTERPRET_ENV", "TRITON_IMPORT_ERROR", "tl", "triton", "triton_jit", "triton_wanted"]


def triton_jit(fn: Callable[..., Any]) -> Any:
    """``triton.jit`` when Triton is loaded; otherwise the plain function (never launched: wrappers raise)."""
    return triton.jit(fn) if triton is not None else fn
