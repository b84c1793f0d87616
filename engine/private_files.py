"""Files and folders that only their owner may read: chats, settings, logs, exports.

The usual umask (022) makes every new file 0644 and every folder 0755, readable by all users of the machine.
Everything here sets the mode explicitly instead, so the result is the same whatever the umask:

- folders 0700 (:func:`make_private_dir`; :func:`require_private_dir` for folders that must already be private,
  such as the one holding the single-instance socket);
- files 0600 (:func:`create_private_file`, :func:`open_private`, :func:`write_private_text`);
- an existing install, made before this, is tightened at start (:func:`secure_data_folder`).

"Tightening" removes the group and other bits and keeps the owner's (a file the user made 0400 stays 0400).
Symlinks are never followed when changing modes. On platforms without POSIX modes (Windows) the calls only create
and write; access there is governed by the profile folder's ACLs.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Final, TextIO

logger = logging.getLogger(__name__)

PRIVATE_DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
SHARED_BITS: Final = 0o077  # group and other: what "private" takes away
LOG_DIR_NAME: Final = "logs"
_POSIX: Final = os.name == "posix"


class UnsafeFolderError(OSError):
    """A folder that must be private to this user is not: another owner, a wider mode, or a symlink."""


def current_uid() -> int | None:
    """The effective user id that owns what this process creates (None where there are no uids)."""
    return os.geteuid() if hasattr(os, "geteuid") else None


def mode_of(path: Path) -> int:
    """The permission bits of ``path`` itself (a symlink is not followed)."""
    return stat.S_IMODE(path.lstat().st_mode)


def tighten(path: Path) -> bool:
    """Take the group and other bits off ``path`` (not followed if a symlink). True if its mode changed.

    A path owned by someone else cannot be changed: that is logged and False returned, as for a missing path.
    """
    if not _POSIX:
        return False
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        return False
    mode = stat.S_IMODE(info.st_mode)
    if not mode & SHARED_BITS:
        return False
    try:
        os.chmod(path, mode & ~SHARED_BITS)
    except OSError as exc:
        logger.warning("cannot make %s private (mode %03o): %s", path, mode, exc)
        return False
    return True


def make_private_dir(path: Path) -> Path:
    """Create ``path`` (and any missing parent) as 0700, or take group/other access off it if it exists.

    Missing parents are 0700 too, as the XDG base directory spec asks of folders an app creates. Raises OSError
    if a folder cannot be created.
    """
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:  # another process made it in between: tightened below like any existing folder
            tighten(folder)
            continue
        if _POSIX:
            os.chmod(folder, PRIVATE_DIR_MODE)  # mkdir's mode went through the umask; this is exact
    if not missing and tighten(path):
        logger.info("made the folder %s private (0700)", path)
    return path


def require_private_dir(path: Path) -> Path:
    """Create ``path`` as 0700 if missing, then check that only this user can enter it.

    Raises :class:`UnsafeFolderError` if it is a symlink, not a folder, owned by another user, or open to the group
    or others. Nothing found there is changed or removed: a folder someone else prepared is refused, not repaired.
    """
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE)
    except FileExistsError:
        pass
    else:
        if _POSIX:
            os.chmod(path, PRIVATE_DIR_MODE)
    check_private_dir(path)
    return path


def check_private_dir(path: Path) -> None:
    """Raise :class:`UnsafeFolderError` unless ``path`` is a real folder of this user with no group/other access."""
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeFolderError(f"{path} is a symbolic link, not a private folder")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeFolderError(f"{path} is not a folder")
    if not _POSIX:
        return
    uid = current_uid()
    if info.st_uid != uid:
        raise UnsafeFolderError(f"{path} belongs to another user (uid {info.st_uid}, this user is uid {uid})")
    mode = stat.S_IMODE(info.st_mode)
    if mode & SHARED_BITS:
        raise UnsafeFolderError(f"{path} is open to other users (mode {mode:03o}, expected 700)")


def create_private_file(path: Path) -> None:
    """Make sure ``path`` exists as a file only its owner can read: created empty as 0600 if missing (so it is never
    readable by others, not even for a moment), else tightened. Raises OSError if it cannot be created."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    except FileExistsError:
        if tighten(path):
            logger.info("made %s private (0600)", path)
        return
    try:
        if _POSIX:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


def open_private(path: Path, *, exclusive: bool = False, encoding: str = "utf-8") -> TextIO:
    """Open ``path`` for writing text as a 0600 file: created so, or an existing one truncated and made 0600.

    ``exclusive``: fail with FileExistsError instead of replacing an existing file (like ``open(path, "x")``).
    """
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)

    def opener(name: str, _flags: int) -> int:
        return os.open(name, flags, PRIVATE_FILE_MODE)

    # open() with an opener, not os.fdopen: the handle's .name stays the path (the crash reporter reads it).
    handle = open(path, "w", encoding=encoding, opener=opener)  # noqa: SIM115 (returned to the caller)
    try:
        if _POSIX:
            os.fchmod(handle.fileno(), PRIVATE_FILE_MODE)  # O_TRUNC keeps an existing file's old mode; not so here
    except BaseException:
        handle.close()
        raise
    return handle


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (replacing it) as a 0600 file."""
    with open_private(path) as handle:
        handle.write(text)


def secure_data_folder(root: Path, extra_files: Iterable[Path] = ()) -> list[Path]:
    """Make the user data folder private, creating it if missing, and fix what an older version left readable.

    The folder itself and ``logs/`` become 0700; every file directly in the folder (the chat database with its
    ``-wal``/``-shm`` files, ``models.json``), every file under ``logs/`` and each of ``extra_files`` (the settings
    file) lose their group/other bits. Model folders below are left alone: the 0700 data folder already closes
    them. Returns the paths whose mode changed (also logged, in one line).
    """
    fixed: list[Path] = []
    if root.exists():
        _tightened(root, fixed)
    else:
        make_private_dir(root)
    logs = root / LOG_DIR_NAME
    candidates: list[Path] = [*_regular_files(root), *extra_files]
    if logs.is_dir() and not logs.is_symlink():
        _tightened(logs, fixed)
        candidates.extend(_regular_files(logs))
    for path in candidates:
        _tightened(path, fixed)
    if fixed:  # one line, however many old crash logs there were
        names = ", ".join(str(p) for p in fixed)
        logger.warning("made private %d path(s) other users could read: %s", len(fixed), names)
    return fixed


def _tightened(path: Path, fixed: list[Path]) -> bool:
    try:
        wide = not stat.S_ISLNK(path.lstat().st_mode) and bool(mode_of(path) & SHARED_BITS)
    except FileNotFoundError:
        return False
    if wide and tighten(path):
        fixed.append(path)
        return True
    return False


def _regular_files(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as exc:
        logger.warning("cannot list %s to make its files private: %s", folder, exc)
        return []
    return [p for p in entries if not p.is_symlink() and p.is_file()]
