"""The application icon as a QIcon, built from the PNGs shipped in ``resources/icons`` (the same files the desktop
entry installs), so the window, the task bar and the applications menu show one picture."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from gpt_oss_desktop.app.desktop.desktop_entry import APP_ID, ICON_SIZES, bundled_icon_dir


def app_icon() -> QIcon:
    """Every shipped size; an empty icon if the files are missing (the caller can check ``isNull()``)."""
    icon = QIcon()
    for size in ICON_SIZES:
        path = bundled_icon_dir() / f"{size}x{size}" / "apps" / f"{APP_ID}.png"
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    return icon
