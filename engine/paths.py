"""Where gpt-oss desktop keeps per-user data (materialised models, ...)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Final

APP_DIR_NAME: Final = "gpt-oss-desktop"
DATA_DIR_ENV: Final = "GPTOSS_DESKTOP_DATA_DIR"


def user_data_dir() -> Path:
    """The per-user data folder (not created here).

    ``$GPTOSS_DESKTOP_DATA_DIR`` when set (tests, portable installs); otherwise ``%APPDATA%\\gpt-oss-desktop`` on
    Windows, ``~/Library/Application Support/gpt-oss-desktop`` on macOS, and ``$XDG_DATA_HOME/gpt-oss-desktop``
    (default ``~/.local/share/gpt-oss-desktop``) elsewhere.
    """
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "win32":
        appdata = os.environ.get("APPDATA")
        base = Path(appdata) if appdata else Path.home() / "AppData" / "Roaming"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        # The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / APP_DIR_NAME
