"""Where a model goes: the Hugging Face cache (shared with other tools) or a plain folder.

Large (LFS) files are fetched into a partial file this app owns, because huggingface_hub 2.x deletes its own
temporary file on any failure (``_download_to_tmp_and_move`` writes a per-process ``<etag>.<uuid>.incomplete``
and unlinks it in ``finally``), so an interrupted 13.8 GB transfer could never resume. Partial files:

- cache: ``<cache>/models--<org>--<name>/blobs/<sha256>.incomplete``, beside the blob it becomes;
- folder: ``<folder>/.cache/gpt-oss-desktop/<repo path>.incomplete``.

A verified partial file is *installed*: in the cache it is renamed to ``blobs/<sha256>`` and then
``hf_hub_download`` itself creates the snapshot link and ``refs/<revision>`` (it finds the blob by its etag and
transfers nothing); in a folder it is renamed into place. Small files (config.json, dtypes.json, the index) are
fetched by ``hf_hub_download`` directly.
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from huggingface_hub import hf_hub_download
from huggingface_hub.file_download import repo_folder_name

from gpt_oss_desktop.app.downloads.catalog import CatalogModel
from gpt_oss_desktop.app.downloads.errors import PlanError
from gpt_oss_desktop.app.downloads.hub import HubSettings
from gpt_oss_desktop.app.downloads.plan import CONFIG, DTYPES, INDEX, DownloadPlan, RemoteFile
from gpt_oss_desktop.app.downloads.verify import Expected

logger = logging.getLogger(__name__)

PARTIAL_SUFFIX: Final = ".incomplete"
FOLDER_PARTIAL_DIR: Final = ".cache/gpt-oss-desktop"


class StorageKind(enum.StrEnum):
    HF_CACHE = "hf-cache"
    FOLDER = "folder"


class FileState(enum.Enum):
    INSTALLED = "installed"  # in its final place
    STAGED = "staged"  # complete but not yet installed (a finished partial file, or a cache blob without its link)
    PARTIAL = "partial"  # some bytes fetched
    MISSING = "missing"


@dataclass(frozen=True)
class FileStatus:
    file: RemoteFile
    state: FileState
    path: Path | None  # the bytes on disk (final, staged or partial file), None when missing
    bytes_on_disk: int


@dataclass(frozen=True)
class LocalFile:
    """A file of a copy found on disk without asking the Hub."""

    path: str  # repo path, "original/config.json"
    local_path: Path
    expected: Expected


@dataclass(frozen=True)
class LocalCopy:
    """A copy of a model found on disk.

    Attributes:
        commit: the snapshot's commit (cache), or None (folder).
        model_dir: the folder to load.
        files: the files found, each with what the disk itself says it should hash to (cache blob names).
        complete: config and every weight file are present.
        present_bytes: bytes of complete files; partial_bytes: bytes in partial files.
    """

    commit: str | None
    model_dir: Path
    files: tuple[LocalFile, ...]
    complete: bool
    present_bytes: int
    partial_bytes: int

    @property
    def hashed(self) -> bool:
        """Every file can be checked against a hash recorded on disk (true for cache copies)."""
        return bool(self.files) and all(
            f.expected.sha256 is not None or f.expected.git_sha1 is not None for f in self.files
        )


def needed_paths(model: CatalogModel) -> tuple[str, ...]:
    """The repo paths a complete copy of ``model`` has (dtypes.json is optional for the engine)."""
    return (CONFIG, *model.weight_files, *((INDEX,) if model.sharded else ()))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class Destination(ABC):
    """One place a model can be stored. Paths are computed here; nothing is written until asked."""

    kind: StorageKind

    def __init__(self, location: Path, repo_id: str) -> None:
        self.location = location.expanduser()
        self.repo_id = repo_id

    @abstractmethod
    def model_dir(self, commit: str) -> Path:
        """The folder the engine loads (it picks ``original/`` inside)."""

    @abstractmethod
    def partial_path(self, file: RemoteFile) -> Path: ...

    @abstractmethod
    def final_path(self, commit: str, file: RemoteFile) -> Path: ...

    @abstractmethod
    def staged_path(self, file: RemoteFile) -> Path | None:
        """Where a complete copy that only needs installing may already be (besides the partial file)."""

    @abstractmethod
    def install(self, plan: DownloadPlan, file: RemoteFile, hub: HubSettings) -> Path:
        """Move a verified staged file into its final place; return that path."""

    @abstractmethod
    def fetch_small(self, plan: DownloadPlan, file: RemoteFile, hub: HubSettings, tqdm_class: Any) -> Path:
        """Download a small (non-LFS) file straight into place with ``hf_hub_download``."""

    @abstractmethod
    def _where(self, plan: DownloadPlan, hub: HubSettings) -> dict[str, Any]:
        """``hf_hub_download``'s arguments that pick ``plan``'s revision and put its files here."""

    def _hub_args(self, plan: DownloadPlan, hub: HubSettings) -> dict[str, Any]:
        return {**self._where(plan, hub), "endpoint": hub.endpoint, "token": hub.token}

    @abstractmethod
    def find_local_copy(self, model: CatalogModel) -> LocalCopy | None:
        """A complete or partial copy of ``model`` already here, found without the network."""

    @abstractmethod
    def partial_files(self) -> list[Path]: ...

    @property
    def working_dir(self) -> Path:
        """A folder whose free space and writability decide whether the download can run."""
        return self.location

    def status(self, plan: DownloadPlan, file: RemoteFile) -> FileStatus:
        final = self.final_path(plan.commit, file)
        if final.is_file() and _size(final) == file.size:
            return FileStatus(file, FileState.INSTALLED, final, file.size)
        for staged in (self.staged_path(file), self.partial_path(file) if file.lfs else None):
            if staged is not None and staged.is_file() and _size(staged) == file.size:
                return FileStatus(file, FileState.STAGED, staged, file.size)
        partial = self.partial_path(file)
        if file.lfs and partial.is_file() and 0 < _size(partial) < file.size:
            return FileStatus(file, FileState.PARTIAL, partial, _size(partial))
        return FileStatus(file, FileState.MISSING, None, 0)

    @abstractmethod
    def tidy(self) -> None:
        """Remove empty folders partial files left behind (after a successful install)."""

    def discard(self, plan: DownloadPlan, file: RemoteFile) -> None:
        """Delete every copy of ``file`` here (it failed verification)."""
        for p in (self.partial_path(file), self.final_path(plan.commit, file), self.staged_path(file)):
            if p is not None and (p.is_file() or p.is_symlink()):
                p.unlink()
                logger.info("deleted %s", p)

    def delete_partials(self) -> int:
        """Delete every partial file of this repo here; returns bytes freed."""
        freed = 0
        for p in self.partial_files():
            freed += _size(p)
            p.unlink(missing_ok=True)
        return freed


class HubCacheDestination(Destination):
    kind = StorageKind.HF_CACHE

    @property
    def storage(self) -> Path:
        return self.location / repo_folder_name(repo_id=self.repo_id, repo_type="model")

    @property
    def working_dir(self) -> Path:
        return self.storage

    def model_dir(self, commit: str) -> Path:
        return self.storage / "snapshots" / commit

    def blob_path(self, file: RemoteFile) -> Path:
        etag = file.sha256 or file.blob_id
        if etag is None:
            raise PlanError(f"{file.path}: the Hub gave neither an LFS sha256 nor a git id")
        return self.storage / "blobs" / etag

    def partial_path(self, file: RemoteFile) -> Path:
        return self.blob_path(file).with_name(self.blob_path(file).name + PARTIAL_SUFFIX)

    def final_path(self, commit: str, file: RemoteFile) -> Path:
        return self.model_dir(commit) / file.path

    def staged_path(self, file: RemoteFile) -> Path | None:
        return self.blob_path(file)

    def install(self, plan: DownloadPlan, file: RemoteFile, hub: HubSettings) -> Path:
        partial = self.partial_path(file)
        blob = self.blob_path(file)
        if partial.is_file():
            os.replace(partial, blob)
        kwargs = self._hub_args(plan, hub)
        # A dry run first: if the revision moved on the Hub since planning, the real call would download a
        # different file (un-resumably) instead of linking the verified blob.
        preview = hf_hub_download(self.repo_id, file.path, dry_run=True, **kwargs)
        if preview.commit_hash != plan.commit or preview.will_download:
            raise PlanError(
                f"{self.repo_id} changed on the Hub during the download (now at {preview.commit_hash[:8]}). "
                "Start the download again.",
                advice="The files already fetched that did not change are kept and reused.",
            )
        return self._check_installed(plan, file, hf_hub_download(self.repo_id, file.path, **kwargs))

    def fetch_small(self, plan: DownloadPlan, file: RemoteFile, hub: HubSettings, tqdm_class: Any) -> Path:
        path = hf_hub_download(self.repo_id, file.path, tqdm_class=tqdm_class, **self._hub_args(plan, hub))
        return self._check_installed(plan, file, path)

    def _where(self, plan: DownloadPlan, hub: HubSettings) -> dict[str, Any]:
        return {"revision": plan.revision, "cache_dir": self.location}

    def _check_installed(self, plan: DownloadPlan, file: RemoteFile, path: str) -> Path:
        want = self.final_path(plan.commit, file)
        if Path(path) != want:
            raise PlanError(
                f"{self.repo_id} changed on the Hub during the download ({file.path} came from another commit). "
                "Start the download again."
            )
        return want

    def _snapshot_commit(self) -> str | None:
        ref = self.storage / "refs" / "main"
        try:
            return ref.read_text(encoding="utf-8").strip() or None
        except OSError:
            pass
        snapshots = self.storage / "snapshots"
        if not snapshots.is_dir():
            return None
        newest = max(snapshots.iterdir(), key=lambda p: p.stat().st_mtime, default=None)
        return newest.name if newest is not None else None

    def find_local_copy(self, model: CatalogModel) -> LocalCopy | None:
        partial_bytes = sum(_size(p) for p in self.partial_files())
        commit = self._snapshot_commit()
        files: list[LocalFile] = []
        if commit is not None:
            snapshot = self.model_dir(commit)
            for path in (*needed_paths(model), DTYPES):
                link = snapshot / path
                if link.is_file():
                    # The blob's name is the hash the Hub gave for it when it was downloaded.
                    etag = link.resolve().name
                    expected = Expected(
                        _size(link),
                        sha256=etag if len(etag) == 64 else None,
                        git_sha1=etag if len(etag) == 40 else None,
                    )
                    files.append(LocalFile(path, link, expected))
        if not files and not partial_bytes:
            return None
        present = {f.path for f in files}
        complete = all(p in present for p in needed_paths(model))
        return LocalCopy(
            commit,
            self.model_dir(commit) if commit else self.storage,
            tuple(files),
            complete,
            sum(_size(f.local_path) for f in files),
            partial_bytes,
        )

    def tidy(self) -> None:
        return None  # partial files live in blobs/, which the cache keeps anyway

    def partial_files(self) -> list[Path]:
        blobs = self.storage / "blobs"
        return sorted(blobs.glob("*" + PARTIAL_SUFFIX)) if blobs.is_dir() else []


class FolderDestination(Destination):
    kind = StorageKind.FOLDER

    def model_dir(self, commit: str) -> Path:
        return self.location

    def partial_path(self, file: RemoteFile) -> Path:
        return self.location / FOLDER_PARTIAL_DIR / (file.path + PARTIAL_SUFFIX)

    def final_path(self, commit: str, file: RemoteFile) -> Path:
        return self.location / file.path

    def staged_path(self, file: RemoteFile) -> Path | None:
        return None

    def install(self, plan: DownloadPlan, file: RemoteFile, hub: HubSettings) -> Path:
        final = self.final_path(plan.commit, file)
        partial = self.partial_path(file)
        if partial.is_file():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(partial, final)
        return final

    def fetch_small(self, plan: DownloadPlan, file: RemoteFile, hub: HubSettings, tqdm_class: Any) -> Path:
        return Path(hf_hub_download(self.repo_id, file.path, tqdm_class=tqdm_class, **self._hub_args(plan, hub)))

    def _where(self, plan: DownloadPlan, hub: HubSettings) -> dict[str, Any]:
        return {"revision": plan.commit, "local_dir": self.location, "cache_dir": hub.cache_dir}

    def find_local_copy(self, model: CatalogModel) -> LocalCopy | None:
        partial_bytes = sum(_size(p) for p in self.partial_files())
        files = [
            LocalFile(path, self.location / path, Expected(_size(self.location / path)))
            for path in (*needed_paths(model), DTYPES)
            if (self.location / path).is_file()
        ]
        if not files and not partial_bytes:
            return None
        present = {f.path for f in files}
        complete = all(p in present for p in needed_paths(model)) and _index_complete(self.location / INDEX)
        return LocalCopy(
            None, self.location, tuple(files), complete, sum(_size(f.local_path) for f in files), partial_bytes
        )

    def tidy(self) -> None:
        root = self.location / FOLDER_PARTIAL_DIR
        if not root.is_dir():
            return
        for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        for folder in (root, root.parent):  # .cache/gpt-oss-desktop, then .cache if nothing else uses it
            with contextlib.suppress(OSError):
                folder.rmdir()

    def partial_files(self) -> list[Path]:
        root = self.location / FOLDER_PARTIAL_DIR
        return sorted(root.rglob("*" + PARTIAL_SUFFIX)) if root.is_dir() else []


def _index_complete(index: Path) -> bool:
    """Every shard an index names is present (True when there is no index)."""
    if not index.is_file():
        return True
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return False
    return all((index.parent / name).is_file() for name in set(weight_map.values()))


def make_destination(kind: StorageKind | str, location: Path, repo_id: str) -> Destination:
    kind = StorageKind(kind)
    if kind is StorageKind.HF_CACHE:
        return HubCacheDestination(location, repo_id)
    return FolderDestination(location, repo_id)
