"""Which files of a gpt-oss repo the engine needs: ``original/`` config, dtypes and weights, nothing else.

A repo holds the same weights twice (``original/`` and the Hugging Face layout at the root) plus ``metal/model.bin``
(docs/model.md#hub-repository-files). The engine loads ``original/`` directly, so that is the only layout fetched: never
``metal/``, never the root shards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from gpt_oss_desktop.app.downloads.errors import PlanError

ORIGINAL_DIR: Final = "original/"
CONFIG: Final = "original/config.json"
DTYPES: Final = "original/dtypes.json"
INDEX: Final = "original/model.safetensors.index.json"
SINGLE: Final = "original/model.safetensors"
_SHARD_RE: Final = re.compile(r"^original/model--(\d{5})-of-(\d{5})\.safetensors$")


@dataclass(frozen=True)
class RemoteFile:
    """A file as the Hub describes it.

    Attributes:
        path: repo path ("original/model.safetensors").
        size: bytes.
        sha256: the LFS object id (large files); None for files stored in git itself.
        blob_id: the git object id (sha1 of ``blob <size>\\0`` + bytes for non-LFS files).
    """

    path: str
    size: int
    sha256: str | None
    blob_id: str | None

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None


@dataclass(frozen=True)
class DownloadPlan:
    """The files to fetch from ``repo_id`` at ``commit`` (what ``revision`` pointed to when planned)."""

    repo_id: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...]

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> RemoteFile:
        for f in self.files:
            if f.path == path:
                return f
        raise KeyError(path)


def select_original_files(repo_id: str, files: Iterable[RemoteFile]) -> tuple[RemoteFile, ...]:
    """config.json, dtypes.json (when present), and the weights: one file, or every shard plus the index.

    Raises:
        PlanError: the repo has no complete ``original/`` checkpoint.
    """
    by_path = {f.path: f for f in files}
    if CONFIG not in by_path:
        raise PlanError(f"{repo_id} has no {CONFIG}: it is not a gpt-oss repo with the original/ layout.")
    shards = sorted((p for p in by_path if _SHARD_RE.match(p)), key=lambda p: p)
    if SINGLE in by_path and shards:
        raise PlanError(f"{repo_id} holds both {SINGLE} and sharded weights in original/; cannot tell which to use.")
    if SINGLE in by_path:
        weights = [by_path[SINGLE]]
    elif shards:
        counts = {int(m.group(2)) for p in shards if (m := _SHARD_RE.match(p))}
        last = counts.pop() if len(counts) == 1 else None
        if last is None or len(shards) != last:
            raise PlanError(f"{repo_id}: original/ holds an incomplete or mixed set of weight shards.")
        weights = [by_path[p] for p in shards]
        if INDEX in by_path:
            weights.append(by_path[INDEX])
    else:
        raise PlanError(f"{repo_id} has no weights in original/ (model.safetensors or model--*-of-*.safetensors).")
    chosen = [by_path[CONFIG]]
    if DTYPES in by_path:
        chosen.append(by_path[DTYPES])
    return (*chosen, *weights)
