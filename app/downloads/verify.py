"""Check files against the Hub's record: size, then SHA-256 (LFS files) or the git blob id (small files).

Hashing reads in 8 MiB blocks; ``hashlib`` releases the GIL on large updates, so a worker thread hashing a 65 GB
model leaves the GUI responsive. ``on_bytes`` reports progress and may raise (pause/cancel) between blocks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gpt_oss_desktop.app.downloads.plan import RemoteFile

_BLOCK = 8 * 1024 * 1024

OnBytes = Callable[[int], None]


@dataclass(frozen=True)
class Expected:
    """What a file must be. At least one of the two hashes is set."""

    size: int | None
    sha256: str | None = None
    git_sha1: str | None = None

    @classmethod
    def of(cls, remote: RemoteFile) -> Expected:
        return cls(remote.size, remote.sha256, None if remote.lfs else remote.blob_id)


def hash_file(path: Path, *, git_blob: bool = False, on_bytes: OnBytes | None = None) -> str:
    """Hex SHA-256 of ``path``, or with ``git_blob`` its git object id (sha1 over ``blob <size>\\0`` + bytes)."""
    if git_blob:
        digest = hashlib.sha1(usedforsecurity=False)
        digest.update(b"blob %d\0" % path.stat().st_size)
    else:
        digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            if on_bytes is not None:
                on_bytes(len(block))
    return digest.hexdigest()


def mismatch(path: Path, expected: Expected, on_bytes: OnBytes | None = None) -> str | None:
    """None when ``path`` matches ``expected``; else why not (a short phrase for messages and logs)."""
    if not path.is_file():
        return "the file is missing"
    size = path.stat().st_size
    if expected.size is not None and size != expected.size:
        if on_bytes is not None:
            on_bytes(size)  # nothing to hash: count the file as checked so the progress bar stays honest
        return f"size {size} bytes, expected {expected.size}"
    if expected.sha256 is not None:
        actual = hash_file(path, on_bytes=on_bytes)
        return None if actual == expected.sha256 else f"SHA-256 {actual[:12]}…, expected {expected.sha256[:12]}…"
    if expected.git_sha1 is not None:
        actual = hash_file(path, git_blob=True, on_bytes=on_bytes)
        return None if actual == expected.git_sha1 else f"git id {actual[:12]}…, expected {expected.git_sha1[:12]}…"
    raise ValueError(f"{path}: no hash to check against")
