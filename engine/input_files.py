"""Reading files a user points the engine at: regular files only, bounded in size, JSON bounded in nesting.

A checkpoint folder is untrusted input. Three things in it must never reach the standard library unguarded:
- a FIFO, socket or device named like a checkpoint file: ``open()`` on a FIFO blocks until a writer appears, so the
  loader would hang. Files are checked with ``stat`` before they are opened, and opened non-blocking, so a file
  swapped for a FIFO in between cannot hang the open either.
- symlink loops and unreadable folders: ``Path.exists()`` reports a loop as "no such file", and ``Path.is_file()``
  raises ``PermissionError`` inside a ``chmod 000`` folder. :func:`describe_os_error` says what really happened.
- JSON nested thousands deep: ``json.loads`` recurses once per level and raises ``RecursionError``.
  :func:`parse_json` measures the nesting first, without recursion, and refuses anything deeper than a small limit.

Every failure is a :class:`CheckpointError` (or the subclass the caller asks for) naming the file.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO, Final

from gpt_oss_desktop.engine.errors import CheckpointError, MissingFilesError

# Real checkpoint JSON (config, index, safetensors header) nests at most 4 levels; allow a margin.
MAX_JSON_DEPTH: Final = 16

# A JSON string, escapes included (possessive quantifiers: linear time, no backtracking).
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
_FOLD_BRACES = bytes.maketrans(b"{}", b"[]")
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"[]{}:,")


def describe_os_error(exc: OSError) -> str:
    """A short reason for ``exc`` that a user can act on ("permission denied", "symlink loop", ...)."""
    if exc.errno == errno.ELOOP:
        return "symlink loop (a symbolic link that points, directly or not, to itself)"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.ENOTDIR:
        return "not a folder"
    return exc.strerror or str(exc)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def stat_path(path: Path) -> os.stat_result:
    """``os.stat(path)`` (following symlinks), as a :class:`CheckpointError` naming ``path`` when it fails."""
    try:
        return os.stat(path)
    except FileNotFoundError as exc:
        raise MissingFilesError(describe_os_error(exc), path) from None
    except OSError as exc:
        raise CheckpointError(describe_os_error(exc), path) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise CheckpointError(f"invalid path: {exc}", path) from None


def is_present(path: Path) -> bool:
    """Whether something is at ``path``: False only when nothing is; a symlink loop or an unreadable folder on the
    way is a :class:`CheckpointError` (``Path.exists`` would call both "absent")."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return False
        raise CheckpointError(describe_os_error(exc), path) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise CheckpointError(f"invalid path: {exc}", path) from None
    return True


def open_regular(path: Path, error: type[CheckpointError] = CheckpointError) -> BinaryIO:
    """Open ``path`` for binary reading if, and only if, it is a regular file (symlinks to one are fine)."""
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{_kind(mode)}, expected a regular file", path)
        # O_NONBLOCK: should the file have been swapped for a FIFO since the stat, the open still returns at once
        # (and the fstat below refuses it). It changes nothing for regular files.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise error(describe_os_error(exc), path) from None
    except ValueError as exc:  # an embedded NUL in the path
        raise error(f"invalid path: {exc}", path) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise error(f"{_kind(mode)}, expected a regular file", path)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: Path, max_bytes: int, error: type[CheckpointError] = CheckpointError) -> bytes:
    """The whole of the regular file ``path``, refused (before reading) when it is larger than ``max_bytes``."""
    with open_regular(path, error) as fh:
        try:
            size = os.fstat(fh.fileno()).st_size
            if size > max_bytes:
                raise error(
                    f"file is {size:,} bytes; more than {max_bytes:,} is not a plausible file of its kind", path
                )
            data = fh.read(max_bytes + 1)
        except OSError as exc:
            raise error(describe_os_error(exc), path) from None
    if len(data) > max_bytes:  # it grew while being read
        raise error(f"file is more than {max_bytes:,} bytes; not a plausible file of its kind", path)
    return data


def _outline(raw: bytes) -> bytes:
    """The structural characters of JSON text (``[]{}:,``) outside strings, in order.

    A loop over the strings rather than one ``re.sub``: sub() keeps every piece between matches alive until it joins
    them (~280 MB for a 16 MB header of a million short strings); this needs only the (small) result.
    """
    out = bytearray()
    prev = 0
    for match in _JSON_STRING.finditer(raw):
        out += raw[prev : match.start()].translate(None, _NOT_STRUCTURE)
        prev = match.end()
    out += raw[prev:].translate(None, _NOT_STRUCTURE)
    return bytes(out)


def json_shape(raw: bytes) -> tuple[int | None, int]:
    """(nesting depth up to ``MAX_JSON_DEPTH + 1``, number of ``,`` and ``:`` separators) of JSON text, in linear
    time and without recursion. Brackets inside strings do not count. The depth is None when the brackets do not
    pair up (text cut short, typically), which no JSON document does.

    The depth is found by peeling: each pass removes every innermost (empty) pair of brackets, so a document of
    depth d is empty after d passes. Unbalanced brackets stop emptying: a pass that removes nothing while brackets
    remain means they can never pair up.
    """
    outline = _outline(raw)
    separators = outline.count(b",") + outline.count(b":")
    # Objects and arrays nest alike: fold {} onto [] so that one replace per pass peels exactly one level.
    brackets = outline.translate(_FOLD_BRACES, b",:")
    for depth in range(MAX_JSON_DEPTH + 1):
        if not brackets:
            return depth, separators
        peeled = brackets.replace(b"[]", b"")
        if len(peeled) == len(brackets):
            return None, separators
        brackets = peeled
    return MAX_JSON_DEPTH + 1, separators


def parse_json(
    raw: bytes, path: Path, *, max_items: int | None = None, error: type[CheckpointError] = CheckpointError
) -> Any:
    """Parse untrusted JSON text: nesting limited to :data:`MAX_JSON_DEPTH`; with ``max_items``, at most that many
    strings and that many ``,``/``:`` separators (bounds on the number of values, checked before anything is built).
    """
    too_many = f"JSON holds more than {max_items or 0:,} values; not a plausible file of its kind"
    # Each string has two quotes (escaped ones only add to the count): a cheap bound before the scan.
    if max_items is not None and raw.count(b'"') > 2 * max_items + 2:
        raise error(too_many, path)
    depth, separators = json_shape(raw)
    if depth is None:
        raise error("corrupt JSON: its brackets do not pair up (the file may be cut short)", path)
    if depth > MAX_JSON_DEPTH:
        raise error(f"corrupt JSON: nested more than {MAX_JSON_DEPTH} levels deep", path)
    if max_items is not None and separators > max_items:
        raise error(too_many, path)
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"not UTF-8 text: {exc}", path) from None
    except RecursionError:  # cannot happen below MAX_JSON_DEPTH; stay typed should it ever
        raise error("corrupt JSON: nested too deep", path) from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more digits than int() accepts
        raise error(f"not valid JSON: {exc}", path) from None


def read_json(
    path: Path, max_bytes: int, *, max_items: int | None = None, error: type[CheckpointError] = CheckpointError
) -> Any:
    """:func:`read_bounded` then :func:`parse_json`."""
    return parse_json(read_bounded(path, max_bytes, error), path, max_items=max_items, error=error)
