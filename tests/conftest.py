"""Test-wide environment: set before any kernel, Qt or hub module is imported."""

from __future__ import annotations

import os

# Triton reads TRITON_INTERPRET when @triton.jit decorates a function, so it must be set before kernels import.
os.environ.setdefault("TRITON_INTERPRET", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# huggingface_hub reads this at import: tests never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
