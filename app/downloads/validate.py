"""The engine's checkpoint validator, as the last gate before a folder is registered, and writability checks."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gpt_oss_desktop.app.downloads.errors import ImportFailedError, PermissionDeniedError, classify_error
from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from gpt_oss_desktop.engine.errors import EngineError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckedCheckpoint:
    layout: str
    size_bytes: int
    files: tuple[Path, ...]


def validate_checkpoint(path: Path) -> CheckedCheckpoint:
    """Run the engine's validator on ``path`` (headers, shapes, dtypes, config; nothing is read into memory).

    Raises:
        ImportFailedError: with the validator's one-line reason (file and tensor at fault).
    """
    try:
        checkpoint = load_checkpoint(path)
    except EngineError as exc:
        raise ImportFailedError(f"{path} is not a usable gpt-oss checkpoint: {exc}") from exc
    except OSError as exc:
        raise ImportFailedError(f"{path} could not be read: {exc}") from exc
    except Exception as exc:  # a validator bug must still end the check with a message, not hang the caller
        logger.exception("the checkpoint validator failed unexpectedly on %s", path)
        raise ImportFailedError(f"{path} could not be checked: unexpected {type(exc).__name__}: {exc}") from exc
    checked = CheckedCheckpoint(checkpoint.layout.value, checkpoint.file_bytes, tuple(checkpoint.files))
    del checkpoint  # drop the memory maps now, on this thread
    return checked


def ensure_writable(folder: Path) -> None:
    """Create ``folder`` if needed and prove a file can be written in it.

    Raises:
        PermissionDeniedError, DiskFullError: with the folder named.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        error = classify_error(exc, what=str(folder), path=folder)
        if isinstance(error, PermissionDeniedError):
            raise PermissionDeniedError(f"Permission denied: cannot write to {folder}.") from exc
        raise error from exc
