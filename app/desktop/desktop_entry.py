"""Register gpt-oss desktop in the user's applications menu (XDG desktop entry + hicolor icons), and remove it.

``gpt-oss-desktop --install-desktop-entry`` copies ``resources/gpt-oss-desktop.desktop`` to
``$XDG_DATA_HOME/applications/`` with its ``Exec=`` pointing at the program that is running now (the frozen
executable, the installed ``gpt-oss-desktop`` script, or this Python with ``-m gpt_oss_desktop.app``), and the icons to
``$XDG_DATA_HOME/icons/hicolor/<size>/apps/``. Then it refreshes the menu and icon caches when the tools for that
are installed. ``--uninstall-desktop-entry`` removes exactly those files. Nothing here imports Qt.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gpt_oss_desktop.resources import resource_path

logger = logging.getLogger(__name__)

# One name for everything the desktop sees: the desktop file id, the icon name, the X11 WM_CLASS instance name
# (StartupWMClass) and the Wayland app id (QGuiApplication.desktopFileName). If they differ, docks show a
# generic icon and a second dock entry for the running window.
APP_ID: Final = "gpt-oss-desktop"
DESKTOP_FILE_NAME: Final = f"{APP_ID}.desktop"
ICON_SIZES: Final = (16, 22, 24, 32, 48, 64, 128, 256, 512)
SCALABLE: Final = "scalable"
_GROUP: Final = "[Desktop Entry]"
_CACHE_TOOL_TIMEOUT_S: Final = 30


class DesktopEntryError(Exception):
    """The desktop entry could not be installed or removed (the message says which file and why)."""


@dataclass(frozen=True, slots=True)
class Launcher:
    """How the applications menu starts this program: the command line and, if it needs one, a working folder."""

    argv: tuple[str, ...]
    working_dir: Path | None = None


def bundled_icon_dir() -> Path:
    """The icon theme folder shipped with the app (``<size>x<size>/apps/`` and ``scalable/apps/`` inside)."""
    return resource_path("icons") / "hicolor"


def bundled_desktop_file() -> Path:
    return resource_path(DESKTOP_FILE_NAME)


def icon_files() -> list[tuple[Path, Path]]:
    """``(shipped file, path relative to a hicolor folder)`` for every icon, PNG sizes then the SVG."""
    pairs = [
        (bundled_icon_dir() / rel, rel)
        for rel in (Path(f"{size}x{size}") / "apps" / f"{APP_ID}.png" for size in ICON_SIZES)
    ]
    rel_svg = Path(SCALABLE) / "apps" / f"{APP_ID}.svg"
    pairs.append((bundled_icon_dir() / rel_svg, rel_svg))
    return pairs


def xdg_data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or relative (the XDG spec says to ignore it)."""
    value = os.environ.get("XDG_DATA_HOME")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / ".local" / "share"


def current_launcher() -> Launcher:
    """The command that starts the program running now, as an applications menu should run it."""
    if getattr(sys, "frozen", False):  # a PyInstaller bundle: the executable is the app
        return Launcher((str(Path(sys.executable).resolve()),))
    # The gui-script pip installed for this interpreter (a venv's bin/, or ~/.local/bin after `pip install --user`);
    # not whatever `gpt-oss-desktop` PATH finds first, which may belong to another installation.
    for scheme in (None, f"{os.name}_user"):
        scripts = sysconfig.get_path("scripts", scheme) if scheme else sysconfig.get_path("scripts")
        candidate = Path(scripts) / APP_ID
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return Launcher((str(candidate.absolute()),))
    # No gui-script found (an unusual scheme): run the installed package with this interpreter. `-P` keeps the
    # working folder off sys.path, so a folder named like a dependency there can never shadow it.
    return Launcher((str(Path(sys.executable).absolute()), "-P", "-m", "gpt_oss_desktop.app"))


# Characters that force an Exec argument into double quotes, and those escaped inside the quotes (spec: "The Exec
# key"). The desktop file's own string escaping then doubles every backslash once more.
_NEEDS_QUOTES: Final = frozenset(" \t\n\"'\\><~|&;$*?#()`")
_ESCAPE_IN_QUOTES: Final = frozenset('"`$\\')


def quote_exec_argument(arg: str) -> str:
    """One argument of an ``Exec=`` value, quoted and escaped as the Desktop Entry Specification requires."""
    if "%" in arg:
        arg = arg.replace("%", "%%")  # a literal percent sign; a single one would start a field code
    if arg and not any(c in _NEEDS_QUOTES for c in arg):
        return arg
    quoted = "".join("\\" + c if c in _ESCAPE_IN_QUOTES else c for c in arg)
    return '"' + quoted + '"'


def _escape_value(value: str) -> str:
    """A desktop-file string value: backslash, newline, tab and carriage return are written as escapes."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def exec_line(launcher: Launcher) -> str:
    return _escape_value(" ".join(quote_exec_argument(a) for a in launcher.argv))


def render_desktop_entry(template: str, launcher: Launcher) -> str:
    """The template with ``Exec``/``TryExec``/``Path`` set for ``launcher``; every other line is kept as is."""
    lines = template.splitlines()
    try:
        start = lines.index(_GROUP)
    except ValueError:
        raise DesktopEntryError(f"the desktop file template has no {_GROUP} group") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    replaced = {"Exec", "TryExec", "Path"}
    group = [line for line in lines[start + 1 : end] if line.split("=", 1)[0].strip() not in replaced]
    group.append(f"Exec={exec_line(launcher)}")
    # TryExec hides the menu entry if the program is deleted, instead of leaving an entry that does nothing.
    group.append(f"TryExec={_escape_value(launcher.argv[0])}")
    if launcher.working_dir is not None:
        group.append(f"Path={_escape_value(str(launcher.working_dir))}")
    return "\n".join([*lines[: start + 1], *group, *lines[end:]]) + "\n"


def parse_desktop_entry(text: str) -> dict[str, str]:
    """The ``[Desktop Entry]`` group as a dict (raw values; comments and other groups skipped)."""
    entries: dict[str, str] = {}
    in_group = False
    for line in text.splitlines():
        if line.startswith("["):
            in_group = line.strip() == _GROUP
        elif in_group and "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            entries[key.strip()] = value.strip()
    return entries


@dataclass(frozen=True, slots=True)
class DesktopEntryPaths:
    """Where the entry and its icons go under one XDG data folder."""

    data_home: Path

    @property
    def desktop_file(self) -> Path:
        return self.data_home / "applications" / DESKTOP_FILE_NAME

    @property
    def icon_theme(self) -> Path:
        return self.data_home / "icons" / "hicolor"

    def icons(self) -> list[Path]:
        return [self.icon_theme / rel for _, rel in icon_files()]


def _require_xdg_desktop() -> None:
    if sys.platform in ("win32", "darwin"):
        # Start menu shortcuts and .app bundles come from the installer there (packaging/README.md).
        raise DesktopEntryError(f"desktop entries are for Linux and BSD desktops, not {sys.platform}")


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)  # a menu scanning the folder never sees half a file


def install(data_home: Path | None = None, launcher: Launcher | None = None) -> list[Path]:
    """Install the desktop entry and icons for ``launcher`` (default: this program). Returns the files written.

    Raises :class:`DesktopEntryError` naming the file when a shipped file is missing or a target cannot be written.
    """
    _require_xdg_desktop()
    paths = DesktopEntryPaths(data_home or xdg_data_home())
    launcher = launcher or current_launcher()
    try:
        template = bundled_desktop_file().read_text(encoding="utf-8")
    except OSError as exc:
        raise DesktopEntryError(f"cannot read the shipped desktop file {bundled_desktop_file()}: {exc}") from exc
    written: list[Path] = []
    try:
        for source, rel in icon_files():
            target = paths.icon_theme / rel
            _write_atomically(target, source.read_bytes())
            written.append(target)
        entry = render_desktop_entry(template, launcher)
        _write_atomically(paths.desktop_file, entry.encode("utf-8"))
        written.append(paths.desktop_file)
    except OSError as exc:
        name = exc.filename or "a file"
        raise DesktopEntryError(f"cannot install the desktop entry: {name}: {exc.strerror or exc}") from exc
    paths.desktop_file.chmod(0o755)  # some file managers only trust launchers that are executable
    _refresh_caches(paths)
    logger.info("installed %s (Exec=%s)", paths.desktop_file, exec_line(launcher))
    return written


def uninstall(data_home: Path | None = None) -> list[Path]:
    """Remove the desktop entry and icons that :func:`install` wrote. Returns the files removed (maybe none)."""
    _require_xdg_desktop()
    paths = DesktopEntryPaths(data_home or xdg_data_home())
    removed: list[Path] = []
    for path in [paths.desktop_file, *paths.icons()]:
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise DesktopEntryError(f"cannot remove {path}: {exc.strerror or exc}") from exc
        removed.append(path)
    if removed:
        _refresh_caches(paths)
    logger.info("removed %d file(s) of the desktop entry", len(removed))
    return removed


def _refresh_caches(paths: DesktopEntryPaths) -> None:
    """Tell menus and icon lookups about the change when the desktop's cache tools exist (optional: most menus
    also watch the folders themselves)."""
    commands = [
        ["update-desktop-database", "--quiet", str(paths.desktop_file.parent)],
        # The user's hicolor folder has no index.theme of its own (the system's describes the theme).
        ["gtk-update-icon-cache", "--quiet", "--force", "--ignore-theme-index", str(paths.icon_theme)],
    ]
    for command in commands:
        tool = shutil.which(command[0])
        if tool is None or not Path(command[-1]).is_dir():
            continue
        try:
            subprocess.run([tool, *command[1:]], check=True, capture_output=True, timeout=_CACHE_TOOL_TIMEOUT_S)
        except (OSError, subprocess.SubprocessError) as exc:
            logger.warning("%s failed (the menu may update only after the next login): %s", command[0], exc)
