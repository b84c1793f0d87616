"""Where the command line leaves the traceback of an unexpected error: one file per error in the app's log folder.

The terminal gets one line (see :func:`engine.cli.main`); the traceback goes to
``<user data dir>/logs/cli-error-<time>.log``, the folder where the desktop app writes its crash reports
(``app/crash.py``), so that a bug report has it. Written privately (folder 0700, file 0600): a traceback can hold
paths. The command line and the chat text are left out on purpose.
"""

from __future__ import annotations

import os
import traceback
from datetime import datetime
from pathlib import Path
from typing import Final

from gpt_oss_desktop.engine.paths import user_data_dir

LOG_DIR_NAME: Final = "logs"  # the same folder name as app/crash.py's LOG_DIR_NAME (engine/ cannot import app/)


def log_dir() -> Path:
    return user_data_dir() / LOG_DIR_NAME


def write_error_log(exc: BaseException, command: str, directory: Path | None = None) -> Path:
    """Write ``exc``'s traceback to a new file and return its path.

    Raises:
        OSError: the folder or file could not be written.
    """
    directory = directory or log_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    text = (
        f"gpt-oss desktop engine command {command!r} failed\n"
        f"time: {datetime.now().astimezone().isoformat(timespec='seconds')}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    for counter in range(100):
        path = directory / (f"cli-error-{stamp}.log" if counter == 0 else f"cli-error-{stamp}-{counter}.log")
        try:
            # O_EXCL: never overwrite (or follow a planted symlink to) an existing file; 0o600 whatever the umask.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace") as fh:
            fh.write(text)
        return path
    raise OSError(f"too many logs named cli-error-{stamp}*.log in {directory}")
