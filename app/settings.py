"""Where the app keeps its preferences (QSettings), and the keys it uses.

The settings file is the user's alone (0600, in a 0700 folder when the folder is the app's own): it names the last
model and the user's choices. Qt rewrites the file through a temporary file but keeps an existing file's mode, so
the file is created private before Qt first writes it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Final

from PySide6.QtCore import QSettings

from gpt_oss_desktop.engine.private_files import create_private_file, make_private_dir

logger = logging.getLogger(__name__)

ORGANIZATION: Final = "gpt-oss-desktop"
APPLICATION: Final = "gpt-oss desktop"

# "system" (follow the desktop), "light" or "dark": View > Theme (app/shell/theme_menu.py).
THEME_KEY: Final = "view/theme"
EFFORT_KEY: Final = "composer/effort"
TEMPERATURE_KEY: Final = "sampling/temperature"
TOP_P_KEY: Final = "sampling/top_p"
MAX_TOKENS_KEY: Final = "sampling/max_tokens"
THINKING_BUDGET_KEY: Final = "sampling/thinking_budget"  # 0: no limit
LAST_MODEL_KEY: Final = "model/last"
# True: Ctrl+Enter sends and Enter makes a new line (for long prompts); False, the default: Enter sends, as in
# ChatGPT, LM Studio and Jan, and Shift+Enter makes a new line.
CTRL_ENTER_SENDS_KEY: Final = "composer/ctrl_enter_sends"
# True: local models load with 8-bit attention and unembedding weights (Model ▸ 8-bit attention weights,
# app/models/weights_menu.py; engine.weights_mode "q8"); False, the default: the checkpoint's exact bf16 weights.
Q8_WEIGHTS_KEY: Final = "model/q8_weights"
# True, the default: a chat longer than a local model's context leaves out its oldest turns (Chat ▸ Fit long chats
# to the context, app/chat/context_setting.py; engine/context_fit.py); False: such a chat's next answer fails.
FIT_CONTEXT_KEY: Final = "chat/fit_context"
# How long a chat may grow with a local model, in tokens (Model ▸ Context length, app/models/context_menu.py)
CONTEXT_LENGTH_KEY: Final = "model/context_length"
SERVER_PORT_KEY: Final = "server/port"  # Model > Serve on localhost listens here (default 8000)
EXPORT_FOLDER_KEY: Final = "export/last_folder"  # where the last export went: the next export dialog opens there
# The tools the app's chats offer the model, their policies and the MCP servers: one JSON value (app/tools).
TOOLS_KEY: Final = "tools/config"
# The user's saved instruction presets, one JSON object {name: text} (the instructions dialog's Presets row,
# app/chat/instruction_presets.py); read tolerantly: a broken value shows no presets.
INSTRUCTION_PRESETS_KEY: Final = "chat/instruction_presets"
# The instructions new chats start with, plain text; absent or empty: new chats start without (the instructions
# dialog's "Start new chats with these instructions").
DEFAULT_INSTRUCTIONS_KEY: Final = "chat/default_instructions"


def stored_bool(settings: QSettings, key: str, default: bool) -> bool:
    """A saved on/off choice; ``default`` when never set (an ini file stores booleans as text)."""
    value = settings.value(key, default)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def make_settings(ini_path: str | None = None) -> QSettings:
    """The platform's settings store, or an ini file at ``ini_path`` (tests, portable installs); its file private."""
    try:
        if ini_path:
            _make_private(Path(ini_path), own_folder=False)
        elif (native := native_settings_file()) is not None:
            _make_private(native, own_folder=True)
    except OSError as exc:  # Qt reports its own write errors later; the app still runs
        logger.warning("cannot make the settings file private: %s", exc)
    if ini_path:
        return QSettings(ini_path, QSettings.Format.IniFormat)
    return QSettings(ORGANIZATION, APPLICATION)


def native_settings_file() -> Path | None:
    """The file behind ``QSettings(ORGANIZATION, APPLICATION)`` where it is a plain file this app writes (an ini
    file under ``$XDG_CONFIG_HOME`` on Linux and BSD); None for the Windows registry and macOS preferences."""
    if sys.platform in ("win32", "darwin"):
        return None
    return Path(QSettings(ORGANIZATION, APPLICATION).fileName())


def private_settings_paths(ini_path: str | None = None) -> list[Path]:
    """The settings paths an older version may have left readable: the file, and the app's own folder for it."""
    if ini_path:
        return [Path(ini_path)]
    native = native_settings_file()
    return [] if native is None else [native.parent, native]


def _make_private(path: Path, *, own_folder: bool) -> None:
    if own_folder:
        make_private_dir(path.parent)  # ~/.config/gpt-oss-desktop holds nothing but this app's settings
    elif not path.parent.exists():
        make_private_dir(path.parent)  # a folder created for the ini file alone
    create_private_file(path)
