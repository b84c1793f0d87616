"""Process-level memory hygiene for the CPU path."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# glibc mallopt parameter numbers (<malloc.h>).
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


@dataclass(frozen=True)
class HeapPolicy:
    """Fixed glibc malloc thresholds, in bytes (fixed ones also switch off glibc's adaptive thresholds)."""

    mmap_threshold: int  # blocks from this size up are mmapped and handed back to the OS when freed
    trim_threshold: int  # free space at the heap's top kept before it is returned to the OS
    top_pad: int  # extra space taken whenever the heap grows, and kept when it shrinks


# Two measured needs meet here:
# - Large transient buffers (a decoded expert is ~33 MB on gpt-oss-20b) must be mmapped and handed back when freed.
#   With glibc's adaptive threshold, raised after the first big free, the buffers of many differently-sized
#   allocations fragment the heap: on the `mini` preset a 512-token prefill then kept ~1.4 GB of anonymous memory
#   instead of ~0.4 GB.
# - Decode's per-step buffers must stay on pages the process already touched. The fp32 logits of a 3-sequence batch
#   are 2.4 MB; with a 1 MB threshold each step mmapped them afresh: 832 minor page faults per batched step on the
#   `small` preset, ~1.8 ms of a ~6 ms step. 4 MB covers the logits of up to 5 sequences at the 201,088-token
#   vocabulary, and a padded, rarely trimmed heap top keeps the pages mapped between steps.
HEAP_POLICY = HeapPolicy(mmap_threshold=4 << 20, trim_threshold=64 << 20, top_pad=16 << 20)


@functools.cache
def limit_heap_fragmentation() -> bool:
    """Apply :data:`HEAP_POLICY` (once per process); a no-op returning False where glibc is not the allocator."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        libc.gnu_get_libc_version  # noqa: B018 - glibc only (musl's mallopt is a stub that ignores its arguments)
        settings = (
            (_M_MMAP_THRESHOLD, HEAP_POLICY.mmap_threshold),
            (_M_TRIM_THRESHOLD, HEAP_POLICY.trim_threshold),
            (_M_TOP_PAD, HEAP_POLICY.top_pad),
        )
        ok = all(bool(libc.mallopt(param, value)) for param, value in settings)
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    logger.debug("malloc policy %s applied: %s", HEAP_POLICY, ok)
    return ok
