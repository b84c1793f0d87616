"""app.desktop.platform_check: missing xcb plugin libraries are named with the packages and commands that install them.

``ldd`` output is fed in as text (a stand-in: the libraries a user lacks cannot be removed from this machine). The
sample has the exact shape of ``ldd`` on PySide6 6.11's libqxcb.so on Debian 12, where that run printed
"libxcb-icccm.so.4 => not found" and "libxcb-keysyms.so.1 => not found", each once per object that needs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpt_oss_desktop.app.desktop import platform_check
from gpt_oss_desktop.app.desktop.platform_check import advise, check, parse_ldd, uses_xcb

LDD_SAMPLE = """\
\tlinux-vdso.so.1 (0x00007ffd6a5f2000)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f4c2a000000)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb.so.1 => /lib/x86_64-linux-gnu/libxcb.so.1 (0x00007f4c29fd0000)
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f4c29c00000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f4c2a5a0000)
"""


def test_parse_ldd_lists_each_missing_library_once_in_order() -> None:
    assert parse_ldd(LDD_SAMPLE) == [
        "libxcb-cursor.so.0",
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
        "libxkbcommon-x11.so.0",
    ]
    assert parse_ldd("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n") == []


def test_advice_names_the_debian_and_fedora_packages_and_commands() -> None:
    text = advise(parse_ldd(LDD_SAMPLE)).text()
    assert "sudo apt-get install libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0" in text
    assert "sudo dnf install xcb-util-cursor xcb-util-wm xcb-util-keysyms libxkbcommon-x11" in text
    assert "libxcb-icccm.so.4" in text


def test_every_library_of_the_known_list_has_both_packages() -> None:
    # The packages a minimal Debian desktop lacks (shared/docs/setup-notes.md), plus the other xcb extensions.
    debian = [
        "libxcb-cursor0",
        "libxcb-icccm4",
        "libxcb-keysyms1",
        "libxcb-image0",
        "libxcb-render-util0",
        "libxcb-xkb1",
        "libxkbcommon-x11-0",
        "libxcb-shape0",
        "libxcb-randr0",
    ]
    known = {packages.debian: packages for packages in platform_check.PACKAGES.values()}
    for name in debian:
        assert name in known and known[name].fedora


def test_a_library_without_a_known_package_is_still_named() -> None:
    advice = advise(["libxcb-icccm.so.4", "libfoo-bar.so.7"])
    assert advice.debian == ("libxcb-icccm4",)
    assert advice.unknown == ("libfoo-bar.so.7",)
    assert "libfoo-bar.so.7" in advice.text() and "apt-file search" in advice.text()


def test_a_package_providing_several_missing_libraries_is_listed_once() -> None:
    advice = advise(["libxcb-randr.so.0", "libxcb-shape.so.0"])
    assert advice.fedora == ("libxcb",)
    assert advice.debian == ("libxcb-randr0", "libxcb-shape0")


@pytest.mark.parametrize(
    ("env", "platform", "expected"),
    [
        ({}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"QT_QPA_PLATFORM": "wayland"}, "linux", False),
        ({}, "darwin", False),
        ({}, "win32", False),
    ],
)
def test_the_check_applies_only_where_qt_loads_xcb(env: dict[str, str], platform: str, expected: bool) -> None:
    assert uses_xcb(env, platform) is expected


def test_check_reads_the_plugin_through_ldd() -> None:
    seen: list[Path] = []

    def fake_ldd(path: Path) -> str:
        seen.append(path)
        return LDD_SAMPLE

    plugin = Path("/venv/libqxcb.so")
    advice = check({}, platform="linux", plugin=lambda: plugin, ldd=fake_ldd)
    assert seen == [plugin]
    assert advice is not None and "libxcb-icccm4" in advice.debian
    assert check({}, platform="linux", plugin=lambda: plugin, ldd=lambda _: "") is None
    assert check({"QT_QPA_PLATFORM": "offscreen"}, platform="linux", plugin=lambda: plugin, ldd=fake_ldd) is None
    assert len(seen) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("ldd") is None, reason="Linux with ldd")
def test_the_real_plugin_is_found_and_read_without_loading_qt() -> None:
    code = (
        "import sys\n"
        "from gpt_oss_desktop.app.desktop import platform_check\n"
        "plugin = platform_check.xcb_plugin()\n"
        "assert plugin is not None and plugin.name == 'libqxcb.so', plugin\n"
        "assert 'libQt6XcbQpa.so.6' in platform_check.run_ldd(plugin)\n"
        "assert not [m for m in sys.modules if m.startswith('PySide6')]\n"
    )
    result = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_the_command_is_silent_and_succeeds_offscreen() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-P", "-m", "gpt_oss_desktop.app.desktop.platform_check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
