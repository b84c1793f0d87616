"""Before Qt starts on Linux: are the X11 (xcb) platform plugin's shared libraries installed?

When one is missing, Qt aborts the whole process ("Could not load the Qt platform plugin "xcb"", then "Fatal Python
error: Aborted") and names at most the first library. This check runs ``ldd`` on PySide6's
``plugins/platforms/libqxcb.so`` and, for every library reported "not found", names the Debian/Ubuntu and Fedora
package that provides it, with the install commands.

Qt-free on purpose (it runs before Qt and must not load it):
``python -P -m gpt_oss_desktop.app.desktop.platform_check``.
Exit status: 0 when nothing is missing or no check applies (not Linux, an offscreen/Wayland/other platform, no ldd,
no xcb plugin), 1 when libraries are missing.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

PLATFORM_ENV = "QT_QPA_PLATFORM"


@dataclass(frozen=True)
class SystemPackages:
    """The packages that provide one shared library."""

    debian: str  # Debian and Ubuntu (apt-get)
    fedora: str  # Fedora, RHEL and friends (dnf)


# soname -> packages, for every library libqxcb.so loads that a minimal desktop install may lack (checked against
# `ldd` on PySide6 6.11's libqxcb.so, Debian 12). The first seven are the ones a minimal Debian desktop lacks.
PACKAGES: Mapping[str, SystemPackages] = {
    "libxcb-cursor.so.0": SystemPackages("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": SystemPackages("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms.so.1": SystemPackages("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image.so.0": SystemPackages("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util.so.0": SystemPackages("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-xkb.so.1": SystemPackages("libxcb-xkb1", "libxcb"),
    "libxkbcommon-x11.so.0": SystemPackages("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon.so.0": SystemPackages("libxkbcommon0", "libxkbcommon"),
    "libxcb-util.so.1": SystemPackages("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": SystemPackages("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": SystemPackages("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": SystemPackages("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": SystemPackages("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": SystemPackages("libxcb-xfixes0", "libxcb"),
    "libxcb-render.so.0": SystemPackages("libxcb-render0", "libxcb"),
    "libxcb.so.1": SystemPackages("libxcb1", "libxcb"),
    "libX11-xcb.so.1": SystemPackages("libx11-xcb1", "libX11-xcb"),
    "libX11.so.6": SystemPackages("libx11-6", "libX11"),
    "libXau.so.6": SystemPackages("libxau6", "libXau"),
    "libXdmcp.so.6": SystemPackages("libxdmcp6", "libXdmcp"),
    "libEGL.so.1": SystemPackages("libegl1", "libglvnd-egl"),
    "libGL.so.1": SystemPackages("libgl1", "libglvnd-glx"),
    "libGLX.so.0": SystemPackages("libglx0", "libglvnd-glx"),
    "libGLdispatch.so.0": SystemPackages("libglvnd0", "libglvnd"),
    "libfontconfig.so.1": SystemPackages("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": SystemPackages("libfreetype6", "freetype"),
    "libdbus-1.so.3": SystemPackages("libdbus-1-3", "dbus-libs"),
    "libglib-2.0.so.0": SystemPackages("libglib2.0-0", "glib2"),
    "libgthread-2.0.so.0": SystemPackages("libglib2.0-0", "glib2"),
    "libpng16.so.16": SystemPackages("libpng16-16", "libpng"),
}

# "libxcb-icccm.so.4 => not found" (ldd repeats a missing library once per object that needs it)
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$", re.MULTILINE)


def parse_ldd(output: str) -> list[str]:
    """The sonames ``ldd`` reports as "not found", each once, in the order ldd first names them."""
    return list(dict.fromkeys(_NOT_FOUND.findall(output)))


@dataclass(frozen=True)
class Advice:
    """What to install for a set of missing libraries."""

    missing: tuple[str, ...]
    debian: tuple[str, ...]  # package names, each once
    fedora: tuple[str, ...]
    unknown: tuple[str, ...]  # sonames no package is known for

    def text(self) -> str:
        lines = [
            "The Qt X11 (xcb) platform plugin cannot start: these system libraries are missing:",
            *(f"  {soname}" for soname in self.missing),
            "",
        ]
        if self.debian:
            lines += ["Debian / Ubuntu:", f"  sudo apt-get install {' '.join(self.debian)}", ""]
        if self.fedora:
            lines += ["Fedora:", f"  sudo dnf install {' '.join(self.fedora)}", ""]
        if self.unknown:
            lines += [
                f"No package is known here for: {' '.join(self.unknown)}.",
                "  Find it with `apt-file search NAME` (Debian/Ubuntu) or `dnf provides '*/NAME'` (Fedora).",
                "",
            ]
        lines.append("Then start the app again.")
        return "\n".join(lines)


def advise(missing: Sequence[str]) -> Advice:
    """The Debian/Ubuntu and Fedora packages that provide ``missing`` (sonames), each package once."""
    known = [PACKAGES[soname] for soname in missing if soname in PACKAGES]
    return Advice(
        missing=tuple(missing),
        debian=tuple(dict.fromkeys(p.debian for p in known)),
        fedora=tuple(dict.fromkeys(p.fedora for p in known)),
        unknown=tuple(soname for soname in missing if soname not in PACKAGES),
    )


def uses_xcb(env: Mapping[str, str], platform: str = sys.platform) -> bool:
    """Whether Qt will (or may) load the xcb plugin: Linux, and ``QT_QPA_PLATFORM`` unset or ``xcb``."""
    if not platform.startswith("linux"):
        return False
    # "xcb:option=value" and "wayland;xcb" (a fallback list) both name it.
    requested = [name.split(":", 1)[0].strip() for name in env.get(PLATFORM_ENV, "").split(";")]
    return requested == [""] or "xcb" in requested


def xcb_plugin() -> Path | None:
    """PySide6's ``libqxcb.so``, found without importing PySide6 (which would load Qt), or None."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        plugin = Path(location) / "Qt" / "plugins" / "platforms" / "libqxcb.so"
        if plugin.is_file():
            return plugin
    return None


def run_ldd(path: Path) -> str:
    """``ldd path``'s output (ldd prints "not found" lines and still exits 0 for missing libraries)."""
    result = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout


def check(
    env: Mapping[str, str],
    *,
    platform: str = sys.platform,
    plugin: Callable[[], Path | None] = xcb_plugin,
    ldd: Callable[[Path], str] = run_ldd,
) -> Advice | None:
    """The advice when the xcb plugin would fail to load for missing libraries; None when nothing is missing or no
    check applies."""
    if not uses_xcb(env, platform):
        return None
    path = plugin()
    if path is None:
        logger.info("no PySide6 xcb plugin found; skipping the library check")
        return None
    missing = parse_ldd(ldd(path))
    return advise(missing) if missing else None


def main(argv: Sequence[str] | None = None) -> int:
    del argv  # no options
    if shutil.which("ldd") is None:
        return 0
    advice = check(os.environ)
    if advice is None:
        return 0
    # The user reads this in the terminal that started the app (before Qt, so no dialog can show it).
    sys.stderr.write(advice.text() + "\n")
    if os.environ.get("WAYLAND_DISPLAY") and not os.environ.get(PLATFORM_ENV):
        # Under Wayland Qt may not need xcb at all: say so, but let it try.
        sys.stderr.write("(A Wayland session: Qt may start without xcb; starting anyway.)\n")
        return 0
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
