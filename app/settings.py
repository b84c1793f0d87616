"""Where the app keeps its preferences (QSettings), and the keys it uses."""

from __future__ import annotations

from typing import Final

from PySide6.QtCore import QSettings

ORGANIZATION: Final = "gpt-oss-desktop"
APPLICATION: Final = "gpt-oss desktop"

EFFORT_KEY: Final = "composer/effort"
TEMPERATURE_KEY: Final = "sampling/temperature"
TOP_P_KEY: Final = "sampling/top_p"
MAX_TOKENS_KEY: Final = "sampling/max_tokens"
LAST_MODEL_KEY: Final = "model/last"


def make_settings(ini_path: str | None = None) -> QSettings:
    """The platform's settings store, or an ini file at ``ini_path`` (tests, portable installs)."""
    if ini_path:
        return QSettings(ini_path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)
