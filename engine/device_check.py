"""Refuse a device the model cannot run on before any weight is read, with an :class:`UnsupportedDeviceError`.

Without this check the same problems surface late and untyped: ``AssertionError("Torch not compiled with CUDA
enabled")`` from a CPU-only build, or ``AcceleratorError: no kernel image is available`` from the first kernel on a
GPU older (or newer) than any architecture this torch build was compiled for.
"""

from __future__ import annotations

import re

import torch

from gpt_oss_desktop.engine.errors import UnsupportedDeviceError

# "sm_90", "sm_90a", "compute_120": binary code for one architecture, or PTX that the driver compiles for any newer one.
_ARCH = re.compile(r"(sm|compute)_(\d+)(\d)[af]?")


def check_device(device: torch.device) -> None:
    """Raise :class:`UnsupportedDeviceError` when ``device`` cannot run the model; return when it can (CPU always)."""
    if device.type != "cuda":
        return
    name = str(device)
    if not torch.cuda.is_available():
        why = "this PyTorch build has no CUDA" if torch.version.cuda is None else "no usable NVIDIA GPU or driver"
        raise UnsupportedDeviceError(why, name)
    index = device.index if device.index is not None else torch.cuda.current_device()
    count = torch.cuda.device_count()
    if not 0 <= index < count:
        raise UnsupportedDeviceError(f"no such GPU (this machine has {count})", name)
    capability = torch.cuda.get_device_capability(index)
    arch_list = torch.cuda.get_arch_list()
    if arch_list and not has_kernel_image(capability, arch_list):
        gpu = torch.cuda.get_device_name(index)
        raise UnsupportedDeviceError(
            f"{gpu} (CUDA capability {capability[0]}.{capability[1]}) is not among the architectures this PyTorch "
            f"build runs on ({' '.join(arch_list)})",
            name,
        )


def has_kernel_image(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether a build for ``arch_list`` runs on a GPU of ``capability``: binary code for the same major version and
    an equal or lower minor one, or PTX for an equal or lower version."""
    for arch in arch_list:
        match = _ARCH.fullmatch(arch)
        if match is None:
            continue
        kind, version = match.group(1), (int(match.group(2)), int(match.group(3)))
        if kind == "sm" and version[0] == capability[0] and version[1] <= capability[1]:
            return True
        if kind == "compute" and version <= capability:
            return True
    return False
