"""Process-level memory hygiene for the CPU path."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import mmap
import sys
from dataclasses import dataclass
from pathlib import Path

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


_MADV_DONTNEED = 4  # <sys/mman.h>, the same on every Linux architecture


def _private_file_mapping(start: int, end: int, maps: str) -> bool:
    """Whether ``[start, end)`` lies inside one private file mapping listed in ``maps`` (/proc/self/maps text)."""
    for line in maps.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 6 or not fields[5].startswith("/"):
            continue  # anonymous memory, the heap, the stack, [vdso]...
        lo, hi = (int(part, 16) for part in fields[0].split("-"))
        if lo <= start and end <= hi:
            return fields[1].endswith("p") and fields[4] != "0"
    return False


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library, looked up once (``find_library`` runs ``ldconfig``: too slow for every block of a tensor)."""
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name, use_errno=True)


def release_file_pages(address: int, nbytes: int) -> int:
    """Drop the whole pages of ``[address, address + nbytes)`` from this process's resident memory when that range is
    part of a private, unwritten file mapping (a checkpoint tensor, engine.checkpoint.safetensors_io); returns the
    bytes released (0 anywhere else, and off Linux).

    Why: a weight converted at load time (the ``--weights q8`` mode) was read once, so its pages of the checkpoint
    file count in the process's RSS for as long as the file stays mapped, which the experts keep it. ``MADV_DONTNEED``
    unmaps them from this process (they stay in the page cache); touching them again reads the file's bytes back, so
    nothing is lost. Never used on anonymous memory, where the same advice would zero the pages.
    """
    if not sys.platform.startswith("linux") or nbytes <= 0:
        return 0
    end = address + nbytes
    try:
        maps = Path("/proc/self/maps").read_text(encoding="ascii", errors="replace")
    except OSError:
        return 0
    if not _private_file_mapping(address, end, maps):
        return 0
    page = mmap.PAGESIZE
    lo = -(-address // page) * page  # only pages the range covers whole: a neighbour may share the edge pages
    hi = end // page * page
    if hi <= lo:
        return 0
    libc = _libc()
    if libc is None:
        return 0
    if libc.madvise(ctypes.c_void_p(lo), ctypes.c_size_t(hi - lo), _MADV_DONTNEED) != 0:
        logger.debug("madvise(MADV_DONTNEED) failed: errno %d", ctypes.get_errno())
        return 0
    return hi - lo
