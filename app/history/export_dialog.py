"""The save dialog of every export (a chat, a comparison): it opens in the folder of the last export, or in the
user's Documents folder, and suggests the title as the file name (app.history.file_names)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths
from PySide6.QtWidgets import QFileDialog, QWidget

from gpt_oss_desktop.app.history.file_names import export_file_name
from gpt_oss_desktop.app.settings import EXPORT_FOLDER_KEY


def export_folder(settings: QSettings | None) -> Path:
    """Where an export dialog opens: the last export's folder if it still exists, else Documents, else home."""
    if settings is not None:
        last = settings.value(EXPORT_FOLDER_KEY)
        if isinstance(last, str) and last and Path(last).is_dir():
            return Path(last)
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    # Not the working folder: a window started from a menu has "/" or the app's own folder there.
    if documents and Path(documents).is_dir():
        return Path(documents)
    return Path.home()


def suggested_export_path(settings: QSettings | None, title: str, suffix: str, fallback: str = "chat") -> Path:
    return export_folder(settings) / export_file_name(title, suffix, fallback)


def remember_export_folder(settings: QSettings | None, path: Path) -> None:
    if settings is not None:
        settings.setValue(EXPORT_FOLDER_KEY, str(path.parent))


def ask_export_path(
    parent: QWidget,
    settings: QSettings | None,
    *,
    caption: str,
    title: str,
    suffix: str,
    name_filter: str,
    fallback: str = "chat",
) -> Path | None:
    """Ask where to save an export (None if the user cancels); the chosen folder is remembered in ``settings``."""
    start = suggested_export_path(settings, title, suffix, fallback)
    chosen, _ = QFileDialog.getSaveFileName(parent, caption, str(start), name_filter)
    if not chosen:
        return None
    path = Path(chosen)
    remember_export_folder(settings, path)
    return path
