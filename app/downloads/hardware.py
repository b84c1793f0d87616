"""What this machine can run: GPU and free VRAM (torch), system RAM (psutil), free disk at the target.

The probes are plain callables so tests (and the wizard's tests) can inject a machine; :func:`assess` turns a
machine and a model into the wizard's verdict. Probing imports torch and may initialise CUDA: call it off the GUI
thread.
"""

from __future__ import annotations

import enum
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import psutil

from gpt_oss_desktop.app.downloads.catalog import CatalogModel
from gpt_oss_desktop.app.downloads.errors import human_bytes

logger = logging.getLogger(__name__)

# Files never fill a disk to the last byte: keep this much (or 2 % of the download, if more) free.
DISK_MARGIN_BYTES: Final = 1024**3
DISK_MARGIN_FRACTION: Final = 0.02


@dataclass(frozen=True)
class GpuInfo:
    name: str
    free_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class MachineInfo:
    gpu: GpuInfo | None
    ram_bytes: int
    disk_free_bytes: int
    disk_path: Path


def probe_gpu() -> GpuInfo | None:
    """The CUDA device with the most free memory, or None (no CUDA build, no device, or a broken driver)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        best: GpuInfo | None = None
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            info = GpuInfo(str(torch.cuda.get_device_name(index)), int(free), int(total))
            if best is None or info.free_bytes > best.free_bytes:
                best = info
        return best
    except Exception as exc:  # a driver problem must not break the wizard: the machine is then CPU-only
        logger.warning("GPU probe failed: %s", exc)
        return None


def probe_ram() -> int:
    return int(psutil.virtual_memory().total)


def existing_parent(path: Path) -> Path:
    """``path`` or its nearest existing ancestor (the target folder may not exist yet)."""
    p = path.expanduser().absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def disk_free_bytes(path: Path) -> int:
    return int(shutil.disk_usage(existing_parent(path)).free)


def disk_needed(download_bytes: int) -> int:
    """Free space required before a download of ``download_bytes`` may start."""
    return download_bytes + max(DISK_MARGIN_BYTES, int(download_bytes * DISK_MARGIN_FRACTION))


@dataclass(frozen=True)
class MachineProbe:
    """Injectable probes; calling it measures the machine for a target folder."""

    gpu: Callable[[], GpuInfo | None] = probe_gpu
    ram: Callable[[], int] = probe_ram
    disk_free: Callable[[Path], int] = field(default=disk_free_bytes)

    def __call__(self, target: Path) -> MachineInfo:
        return MachineInfo(self.gpu(), self.ram(), self.disk_free(target), target)


class Verdict(enum.Enum):
    FITS_GPU = "fits on GPU"
    CPU_ONLY = "CPU only — slow"
    DOES_NOT_FIT = "does not fit"


@dataclass(frozen=True)
class Assessment:
    verdict: Verdict
    reason: str
    memory_needed: int
    disk_needed: int


def assess(model: CatalogModel, machine: MachineInfo, already_on_disk: int = 0) -> Assessment:
    """Whether ``model`` can be downloaded to ``machine.disk_path`` and run on its GPU, its CPU, or not at all."""
    memory = model.memory_needed
    disk = disk_needed(max(0, model.download_bytes - already_on_disk))
    if machine.disk_free_bytes < disk:
        return Assessment(
            Verdict.DOES_NOT_FIT,
            f"needs {human_bytes(disk)} of free disk; {human_bytes(machine.disk_free_bytes)} free at "
            f"{machine.disk_path}",
            memory,
            disk,
        )
    gpu = machine.gpu
    if gpu is not None and gpu.free_bytes >= memory:
        return Assessment(
            Verdict.FITS_GPU,
            f"{gpu.name}: {human_bytes(gpu.free_bytes)} free, needs {human_bytes(memory)}",
            memory,
            disk,
        )
    gpu_note = (
        "no CUDA GPU"
        if gpu is None
        else f"{gpu.name} has {human_bytes(gpu.free_bytes)} free, needs {human_bytes(memory)}"
    )
    if machine.ram_bytes >= memory:
        return Assessment(
            Verdict.CPU_ONLY,
            f"{gpu_note}; {human_bytes(machine.ram_bytes)} of RAM is enough for the CPU",
            memory,
            disk,
        )
    return Assessment(
        Verdict.DOES_NOT_FIT,
        f"needs {human_bytes(memory)} of memory; {gpu_note}, {human_bytes(machine.ram_bytes)} of RAM",
        memory,
        disk,
    )
