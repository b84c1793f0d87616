"""What Help ▸ About gpt-oss desktop shows and its Copy details button copies: the versions a bug report needs.

Privacy: the text goes to the clipboard and from there into public bug reports, so it holds versions and names
only, never chat text, paths (the user's home shows up in nearly every one), API keys or settings values. The
kernels' failure reason is left out for that reason (a compiler's message quotes the build folder), and whatever
still names the home folder is cut to ``~`` as a last guard.
"""

from __future__ import annotations

import logging
import platform
import sys
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, metadata, version
from pathlib import Path
from typing import Final

from gpt_oss_desktop.kernels.cpu_kernel_status import KernelState, KernelStatus  # torch-free

logger = logging.getLogger(__name__)

DISTRIBUTION: Final = "gpt-oss-desktop"
# pyproject.toml's licence, for a bundle whose metadata lacks it (a test keeps the two equal).
LICENCE: Final = "Apache-2.0"
ICONS_LICENCE: Final = "Lucide (ISC)"  # the UI icons (resources/icons/ui/LICENSE)
_CPU_BUILD: Final = "gpt_oss_desktop.kernels.cpu_build"


@dataclass(frozen=True)
class AboutDetails:
    """The About box's facts, each a short string."""

    app_version: str
    python: str
    qt: str
    pyside: str
    torch: str
    harmony: str
    kernels: str
    os: str
    licence: str

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs, in the order shown and copied."""
        return [
            ("gpt-oss desktop", self.app_version),
            ("Python", self.python),
            ("Qt", f"{self.qt} (PySide6 {self.pyside})"),
            ("torch", self.torch),
            ("openai-harmony", self.harmony),
            ("CPU kernels", self.kernels),
            ("OS", self.os),
            ("Licence", self.licence),
            ("Icons", ICONS_LICENCE),
        ]

    def text(self) -> str:
        """Plain text for a bug report, one ``label: value`` a line."""
        return without_home("\n".join(f"{label}: {value}" for label, value in self.rows()) + "\n")


def gather(*, qt: str, pyside: str, kernels: KernelStatus | None, kernels_building: bool = False) -> AboutDetails:
    """The details of this install. ``qt`` and ``pyside`` come from the caller (this module stays Qt-free);
    ``kernels`` is the app's kernel preparation's outcome, None while it runs or before it started."""
    frozen = " (bundle)" if getattr(sys, "frozen", False) else ""
    return AboutDetails(
        app_version=distribution_version(DISTRIBUTION) + frozen,
        python=f"{platform.python_version()} ({platform.python_implementation()})",
        qt=qt,
        pyside=pyside,
        torch=distribution_version("torch", module="torch"),
        harmony=distribution_version("openai-harmony"),
        kernels=kernel_level(kernels, building=kernels_building),
        os=platform.platform(),
        licence=licence(),
    )


def distribution_version(name: str, *, module: str | None = None) -> str:
    """The installed version of distribution ``name``; else that of ``module`` if it is already imported (a bundle
    may carry no metadata); else "unknown". Never imports anything."""
    try:
        return version(name)
    except PackageNotFoundError:
        loaded = sys.modules.get(module) if module else None
        return str(getattr(loaded, "__version__", "unknown"))


def licence() -> str:
    try:
        meta = metadata(DISTRIBUTION)
    except PackageNotFoundError:
        return LICENCE
    for field in ("License-Expression", "License"):  # the SPDX expression (metadata 2.4), else the older field
        if values := meta.get_all(field):
            return str(values[0])
    return LICENCE


def kernel_level(status: KernelStatus | None, *, building: bool = False) -> str:
    """The fused CPU kernels' instruction-set level, and whether they run."""
    if status is not None:
        if status.ok:
            return f"{status.isa} ({status.state.value})"
        if status.state is KernelState.OFF:
            return "off (the torch path is used)"
        # Without the reason: a compiler's error quotes the build folder, under the home folder.
        return f"{status.isa or 'no level'}: could not be built (the slower fallback is used)"
    state = "being built" if building else "not prepared yet"
    level = requested_level()
    return f"{level}, {state}" if level else state


def requested_level() -> str | None:
    """The level the engine would pick; None until the kernels' module is loaded: it imports torch, which takes
    seconds and would stall the window (the app loads it on a worker thread at start)."""
    if _CPU_BUILD not in sys.modules:
        return None
    from gpt_oss_desktop.kernels import cpu_build

    try:
        return cpu_build.requested_level()
    except ValueError as exc:  # CpuIsaError: GPTOSS_CPU_ISA names a level this CPU lacks
        logger.info("no CPU kernel level: %s", exc)
        return f"none ({cpu_build.ISA_ENV} names a level this CPU lacks)"


def without_home(text: str) -> str:
    """``text`` with the home folder written ``~``."""
    try:
        home = str(Path.home())
    except RuntimeError:  # no home folder known: nothing to hide
        return text
    return text.replace(home, "~") if len(home) > 1 else text
