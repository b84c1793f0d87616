"""Process-level memory hygiene for the CPU path."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import sys

logger = logging.getLogger(__name__)

_M_MMAP_THRESHOLD = -3  # glibc mallopt parameter
# Large transient buffers (a decoded expert is ~33 MB on gpt-oss-20b) are served by mmap above this size and handed
# back to the OS when freed. Without a fixed threshold glibc raises it dynamically after the first big free, and the
# buffers of many differently-sized allocations then fragment the heap: measured on the `mini` preset, a 512-token
# prefill kept ~1.4 GB of anonymous memory instead of ~0.4 GB.
MMAP_THRESHOLD_BYTES = 1 << 20


@functools.cache
def limit_heap_fragmentation() -> bool:
    """Fix glibc's mmap threshold (once per process); a no-op returning False where glibc is not the allocator."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    logger.debug("mallopt(M_MMAP_THRESHOLD, %d) -> %s", MMAP_THRESHOLD_BYTES, ok)
    return ok
