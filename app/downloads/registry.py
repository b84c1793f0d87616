"""The installed models and the download in progress, kept in one JSON file in the user data folder.

Writes are atomic (a temporary file in the same folder, fsync, ``os.replace``), so a crash leaves the old list or
the new one, never half of either. A file that cannot be parsed is moved aside (``models.json.corrupt``) rather
than overwritten, and the app starts with an empty list. One lock serialises the download thread's writes with the
GUI thread's reads.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from gpt_oss_desktop.app.downloads.errors import RegistryError
from gpt_oss_desktop.engine.paths import user_data_dir

logger = logging.getLogger(__name__)

REGISTRY_NAME: Final = "models.json"
SCHEMA_VERSION: Final = 1


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class InstalledFile:
    """A file of an installed model, relative to its folder, with the hash it was verified against."""

    path: str
    size: int
    sha256: str | None = None
    git_sha1: str | None = None


@dataclass(frozen=True)
class InstalledModel:
    """One model the app knows about.

    Attributes:
        name: what menus show ("gpt-oss-20b").
        path: the folder to load (a cache snapshot or a plain folder).
        layout: the checkpoint layout the engine detected ("original", "hf", "hf-dense").
        size_bytes: bytes of its files.
        verified: every file matched the Hub's size and hash at ``checked_at``.
        check: "sha256" (hashes matched), "structure" (the checkpoint validator passed, no hashes known),
            or "failed" (the last check found a problem).
        source: "download" or "import".
        storage: "hf-cache" or "folder" (what deleting it means).
        repo_id, commit: where it came from, when known.
        files: what was checked, so "verify again" works offline.
    """

    name: str
    path: str
    layout: str
    size_bytes: int
    verified: bool
    check: str
    source: str
    storage: str
    repo_id: str | None = None
    commit: str | None = None
    checked_at: str = field(default_factory=now_iso)
    files: tuple[InstalledFile, ...] = ()

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> InstalledModel:
        files = tuple(InstalledFile(**f) for f in raw.get("files", ()))
        return cls(**{**raw, "files": files})


@dataclass(frozen=True)
class PendingDownload:
    """A download that was started and not finished or cancelled: offered for resuming at the next start."""

    model_key: str
    repo_id: str
    revision: str
    storage: str
    location: str
    started_at: str = field(default_factory=now_iso)


class ModelRegistry:
    """Read and change ``models.json``. Methods are thread-safe; every change is written at once."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else user_data_dir() / REGISTRY_NAME
        self._lock = threading.Lock()
        self._models: list[InstalledModel] = []
        self._pending: PendingDownload | None = None
        self.load_warning: str | None = None
        self._load()

    # -- reading ----------------------------------------------------------------------------------------------

    def models(self) -> list[InstalledModel]:
        with self._lock:
            return list(self._models)

    def find(self, path: str | Path) -> InstalledModel | None:
        key = _key(path)
        with self._lock:
            return next((m for m in self._models if _key(m.path) == key), None)

    @property
    def pending(self) -> PendingDownload | None:
        with self._lock:
            return self._pending

    # -- changing ---------------------------------------------------------------------------------------------

    def add(self, model: InstalledModel) -> None:
        """Add ``model``, replacing any entry for the same folder."""
        with self._lock:
            models = [m for m in self._models if _key(m.path) != _key(model.path)] + [model]
            self._save(models, self._pending)
            self._models = models

    def update(self, model: InstalledModel, **changes: Any) -> InstalledModel:
        changed = replace(model, **changes)
        self.add(changed)
        return changed

    def remove(self, path: str | Path) -> None:
        with self._lock:
            models = [m for m in self._models if _key(m.path) != _key(path)]
            self._save(models, self._pending)
            self._models = models

    def set_pending(self, pending: PendingDownload | None) -> None:
        with self._lock:
            self._save(self._models, pending)
            self._pending = pending

    # -- file -------------------------------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise RegistryError(f"Cannot read the list of installed models ({self.path}): {exc}") from exc
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict) or raw.get("version") != SCHEMA_VERSION:
                raise ValueError(f"unknown format (version {raw.get('version') if isinstance(raw, dict) else '?'})")
            self._models = [InstalledModel.from_dict(m) for m in raw.get("models", [])]
            pending = raw.get("pending")
            self._pending = PendingDownload(**pending) if pending else None
        except (ValueError, TypeError, KeyError) as exc:
            aside = self.path.with_name(self.path.name + ".corrupt")
            os.replace(self.path, aside)
            self._models, self._pending = [], None
            self.load_warning = (
                f"The list of installed models could not be read ({exc}); it was moved to {aside} and a new one "
                "started. Models on disk are untouched: import them again from Manage models."
            )
            logger.error("%s", self.load_warning)

    def _save(self, models: list[InstalledModel], pending: PendingDownload | None) -> None:
        """Write the new state; the in-memory state changes only once this succeeded."""
        data = {
            "version": SCHEMA_VERSION,
            "models": [asdict(m) for m in models],
            "pending": asdict(pending) if pending is not None else None,
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".models-", suffix=".json", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, indent=2)
                    f.write("\n")
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise RegistryError(f"Cannot save the list of installed models ({self.path}): {exc}") from exc


def _key(path: str | Path) -> str:
    return str(Path(path).expanduser().absolute())
