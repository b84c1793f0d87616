"""The bundled UI icons (Lucide, ISC licence: resources/icons/ui/README.md), recoloured for the theme.

The SVGs draw with ``stroke="currentColor"``; a theme replaces that with its text colour. Two ways in:

- :func:`icon` renders one with QSvgRenderer into a QIcon at the screen's device pixel ratio (menu actions, which
  a stylesheet cannot reach: :func:`refresh_action_icons` redraws every action that names an icon);
- :func:`write_recoloured` writes the recoloured SVGs to a private folder for the stylesheet, which gives every
  button with an ``iconName`` property its icon (theme.build_stylesheet). Widgets below the shell set only the
  property, so they need not import this module.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Final

from PySide6.QtCore import QByteArray, QObject, QRectF, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.resources import resource_path

logger = logging.getLogger(__name__)

ICON_DIR: Final = resource_path("icons/ui")
# The dynamic property naming a widget's or an action's icon (one of ICON_NAMES).
ICON_PROPERTY: Final = "iconName"
ICON_NAMES: Final = (
    "box",
    "chevron-down",
    "chevron-right",
    "columns-3",
    "copy",
    "download",
    "file-text",
    "folder-open",
    "git-branch",
    "monitor",
    "moon",
    "paperclip",
    "pencil",
    "refresh-cw",
    "send",
    "settings",
    "sliders-horizontal",
    "square",
    "square-pen",
    "sun",
    "x",
)
# Sizes a QIcon gets pixmaps for (logical pixels): small toolbar and menu icons up to large buttons.
_SIZES: Final = (16, 20, 24, 32)
_folders: dict[str, Path] = {}


def svg_source(name: str) -> str:
    """The SVG text of icon ``name`` as shipped."""
    if name not in ICON_NAMES:
        raise KeyError(f"no bundled icon named {name!r}")
    return (ICON_DIR / f"{name}.svg").read_text(encoding="utf-8")


def recolour(svg: str, colour: str) -> str:
    """``svg`` drawn in ``colour`` (``#rrggbb``): Lucide icons take their stroke (and any fill) from currentColor."""
    return svg.replace("currentColor", colour)


def render(name: str, colour: str, size: int, device_pixel_ratio: float = 1.0) -> QPixmap:
    """Icon ``name`` in ``colour``, ``size`` logical pixels square, sharp at ``device_pixel_ratio``."""
    renderer = QSvgRenderer(QByteArray(recolour(svg_source(name), colour).encode("utf-8")))
    side = max(1, round(size * device_pixel_ratio))
    pixmap = QPixmap(side, side)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, side, side))
    painter.end()
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    return pixmap


def icon(name: str, colour: str | None = None, disabled_colour: str | None = None) -> QIcon:
    """A QIcon of ``name`` in ``colour`` (default: the application palette's text colour) with pixmaps at the
    screen's device pixel ratio; disabled, it is drawn in ``disabled_colour`` (default: the palette's)."""
    palette = QGuiApplication.palette()
    colour = colour or palette.color(QPalette.ColorRole.Text).name()
    disabled_colour = disabled_colour or palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text).name()
    ratio = _device_pixel_ratio()
    result = QIcon()
    for size in _SIZES:
        result.addPixmap(render(name, colour, size, ratio), QIcon.Mode.Normal)
        result.addPixmap(render(name, disabled_colour, size, ratio), QIcon.Mode.Disabled)
    return result


def write_recoloured(colour: str, tag: str) -> dict[str, Path]:
    """Every icon recoloured to ``colour``, as files the stylesheet can name (QSS takes only file URLs).

    The files live in a private temporary folder for this process (one subfolder per colour, written once), which
    is removed at exit. ``tag`` only makes the folder name readable.
    """
    key = f"{tag}-{QColor(colour).name()[1:]}"
    folder = _folders.get(key)
    if folder is None:
        folder = _root() / key
        folder.mkdir()
        for name in ICON_NAMES:
            (folder / f"{name}.svg").write_text(recolour(svg_source(name), colour), encoding="utf-8")
        _folders[key] = folder
    return {name: folder / f"{name}.svg" for name in ICON_NAMES}


# The tick of a checked box, drawn here (not one of the bundled icons): a 16-unit square, a stroke from the left
# middle down to the lower third and up to the top right, in currentColor like the bundled icons.
_CHECK_MARK_SVG: Final = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" fill="none" '
    'stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round">'
    '<polyline points="3.5,8.5 6.5,11.5 12.5,4.5"/></svg>'
)


def write_check_mark(colour: str, tag: str) -> Path:
    """The checked box's tick in ``colour``, as a file the stylesheet can name (beside :func:`write_recoloured`'s)."""
    folder = _root() / f"check-{tag}-{QColor(colour).name()[1:]}"
    path = folder / "check-mark.svg"
    if not path.exists():
        folder.mkdir(exist_ok=True)
        path.write_text(recolour(_CHECK_MARK_SVG, colour), encoding="utf-8")
    return path


def set_icon(target: QObject, name: str) -> None:
    """Give an action its icon ``name`` now and after every theme change (:func:`refresh_action_icons`)."""
    target.setProperty(ICON_PROPERTY, name)
    if isinstance(target, QAction):
        target.setIcon(icon(name))


def refresh_action_icons(app: QApplication) -> None:
    """Redraw every action that names an icon in the palette now in use (after a theme change)."""
    for window in app.topLevelWidgets():
        for action in window.findChildren(QAction):
            name = action.property(ICON_PROPERTY)
            if isinstance(name, str) and name in ICON_NAMES:
                action.setIcon(icon(name))


def _device_pixel_ratio() -> float:
    app = QGuiApplication.instance()
    screens = QGuiApplication.screens() if app is not None else []
    # The sharpest screen: a window moved there still gets crisp icons (Qt scales down, never up, from the set).
    return max((screen.devicePixelRatio() for screen in screens), default=1.0)


_root_folder: list[Path] = []


def _root() -> Path:
    if not _root_folder:
        folder = Path(tempfile.mkdtemp(prefix="gpt-oss-desktop-icons-"))  # mode 0700
        atexit.register(shutil.rmtree, folder, True)
        _root_folder.append(folder)
    return _root_folder[0]
