"""The outcome of preparing the fused CPU kernels (kernels.cpu_build). Imports neither torch nor Qt, so the app can
hold and show a status before torch is loaded."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["KernelState", "KernelStatus"]


class KernelState(enum.Enum):
    READY = "ready"  # a cached build was loaded
    BUILT = "built"  # compiled now (the first run of this install on this CPU level)
    FAILED = "failed"  # could not be built or loaded; the torch path is used
    OFF = "off"  # switched off (GPTOSS_CPU_FUSED=0) or not supported on this platform; the torch path is used


@dataclass(frozen=True)
class KernelStatus:
    """The outcome of ``cpu_build.prepare`` (or ``cpu_build.load_level``)."""

    state: KernelState
    isa: str | None  # the level that runs (or was asked for)
    seconds: float  # time spent building or loading
    reason: str | None = None  # why FAILED or OFF

    @property
    def ok(self) -> bool:
        return self.state in (KernelState.READY, KernelState.BUILT)

    def summary(self) -> str:
        """One line for a terminal or a log."""
        if self.state is KernelState.BUILT:
            return f"CPU kernels built for {self.isa} in {self.seconds:.1f} s"
        if self.state is KernelState.READY:
            return f"CPU kernels ready ({self.isa}, loaded in {self.seconds:.1f} s)"
        if self.state is KernelState.OFF:
            return f"CPU kernels off: {self.reason}; using the torch path"
        return f"CPU kernels could not be built: {self.reason}; using the slower fallback"
