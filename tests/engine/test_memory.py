"""engine.memory's malloc policy: decode-sized buffers stay on touched pages, big ones are still mmapped."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc policy (Linux)")

# In a fresh interpreter: optionally apply a policy, then allocate, touch and free buffers the way decode steps do
# (the fp32 logits of a 3-sequence batch, 2.4 MB, plus a few small tensors) and print minor page faults per step.
_PROBE = textwrap.dedent(
    """
    import ctypes, ctypes.util, resource, sys
    import torch
    from gpt_oss_desktop.engine import memory

    mode = sys.argv[1]
    if mode == "policy":
        print("applied", memory.limit_heap_fragmentation())
    elif mode == "old":  # the earlier fixed 1 MB threshold, which sent the logits to a fresh mmap every step
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(-3, 1 << 20)

    def steps(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(n):
            logits = torch.empty(3, 201088)
            logits.fill_(1.0)
            small = [torch.ones(3, 256) for _ in range(8)]
            del logits, small
        return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / n

    steps(20)  # first touch of the heap
    print("faults", steps(50))
    """
)


def _probe(mode: str) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-P", "-c", _PROBE, mode], capture_output=True, text=True, timeout=120, check=True
    )
    return dict(line.split(" ", 1) for line in done.stdout.splitlines())


def test_policy_keeps_decode_buffers_on_touched_pages() -> None:
    result = _probe("policy")
    assert result["applied"] == "True"
    assert float(result["faults"]) < 20  # measured 0 (vs ~590 per step with the old 1 MB threshold)


def test_the_probe_sees_the_faults_the_policy_removes() -> None:
    # The same probe under the old threshold: every step's 2.4 MB buffer is a fresh mapping (590 pages).
    assert float(_probe("old")["faults"]) > 400


def test_large_buffers_are_still_returned_to_the_system() -> None:
    probe = textwrap.dedent(
        """
        import torch
        from gpt_oss_desktop.engine import memory

        def anon_mb():
            with open("/proc/self/status") as status:
                return next(int(l.split()[1]) // 1024 for l in status if l.startswith("RssAnon"))

        memory.limit_heap_fragmentation()
        base = anon_mb()
        for size_mb in (33, 17, 9, 40, 25):  # transient prefill-sized buffers of assorted sizes
            buffers = [torch.ones(size_mb << 18) for _ in range(4)]
            del buffers
        print(anon_mb() - base)
        """
    )
    done = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert int(done.stdout.strip()) < 100  # at most the policy's trim threshold + top pad (80 MB) stays behind


def test_release_file_pages_drops_mapped_pages_and_keeps_their_bytes(tmp_path: Path) -> None:
    import mmap

    import torch

    from gpt_oss_desktop.engine.memory import release_file_pages

    path = tmp_path / "weights.bin"
    data = torch.arange(4 << 20, dtype=torch.int32)  # 16 MiB
    path.write_bytes(data.numpy().tobytes())
    with path.open("rb") as fh:
        mapping = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_COPY)  # as engine.checkpoint.safetensors_io maps
    mapped = torch.frombuffer(mapping, dtype=torch.int32)
    assert int(mapped.sum()) == int(data.sum())  # every page touched

    address = mapped.data_ptr()

    def resident_kib() -> int:  # Rss of the mapping that holds the tensor
        lines = Path("/proc/self/smaps").read_text().splitlines()
        for i, line in enumerate(lines):
            lo, _, hi = line.partition(" ")[0].partition("-")
            if hi and all(c in "0123456789abcdef" for c in lo + hi) and int(lo, 16) <= address < int(hi, 16):
                return next(int(x.split()[1]) for x in lines[i + 1 :] if x.startswith("Rss:"))
        raise AssertionError("mapping not found")

    assert resident_kib() == mapped.nbytes // 1024
    released = release_file_pages(mapped.data_ptr() + 100, mapped.nbytes - 100)  # the first page is partly outside
    assert released == mapped.nbytes - mmap.PAGESIZE
    assert resident_kib() <= mmap.PAGESIZE // 1024  # at most the page the range did not cover whole
    assert torch.equal(mapped, data)  # read back from the file
    # Anonymous memory is never advised (MADV_DONTNEED would zero it).
    anonymous = torch.arange(1 << 20, dtype=torch.int32)
    assert release_file_pages(anonymous.data_ptr(), anonymous.nbytes) == 0
    assert int(anonymous[-1]) == (1 << 20) - 1
