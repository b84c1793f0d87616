"""Where the command line leaves the traceback of an unexpected error: one file per error in the app's log folder.

The terminal gets one line (see :func:`engine.cli.main`); the traceback goes to
``<user data dir>/logs/cli-error-<time>.log``, the folder where the desktop app writes its crash reports
(``app/desktop/crash.py``), so that a bug report has it.
Written privately (folder 0700, file 0600): a traceback can hold
paths. The command line and the chat text are left out on purpose.
"""

from __future__ import annotations

import traceback
from datetime import datetime
from pathlib import Path

from gpt_oss_desktop.engine.paths import user_data_dir
from gpt_oss_desktop.engine.private_files import LOG_DIR_NAME, make_private_dir, open_private


def log_dir() -> Path:
    return user_data_dir() / LOG_DIR_NAME


def write_error_log(exc: BaseException, command: str, directory: Path | None = None) -> Path:
    """Write ``exc``'s traceback to a new file and return its path.

    Raises:
        OSError: the folder or file could not be written.
    """
    directory = directory or log_dir()
    make_private_dir(directory)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    text = (
        f"gpt-oss desktop engine command {command!r} failed\n"
        f"time: {datetime.now().astimezone().isoformat(timespec='seconds')}\n\n"
        + "".join(traceback.format_exception(exc))
    )
    for counter in range(100):
        path = directory / (f"cli-error-{stamp}.log" if counter == 0 else f"cli-error-{stamp}-{counter}.log")
        try:
            # exclusive: never overwrite (or follow a planted symlink to) an existing file; 0600 whatever the umask.
            handle = open_private(path, exclusive=True)
        except FileExistsError:
            continue
        with handle:
            handle.write(text.encode("utf-8", "backslashreplace").decode("utf-8"))
        return path
    raise OSError(f"too many logs named cli-error-{stamp}*.log in {directory}")
