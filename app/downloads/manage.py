"""What the model manager does to installed models: verify again, delete, import a folder.

Blocking (hashing a model reads all of it): the manager runs these on a worker thread.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable
from pathlib import Path

from huggingface_hub import scan_cache_dir

from gpt_oss_desktop.app.downloads.destination import FOLDER_PARTIAL_DIR
from gpt_oss_desktop.app.downloads.errors import DownloadError, VerificationError, classify_error
from gpt_oss_desktop.app.downloads.registry import InstalledModel, ModelRegistry, now_iso
from gpt_oss_desktop.app.downloads.validate import CheckedCheckpoint, validate_checkpoint
from gpt_oss_desktop.app.downloads.verify import Expected, mismatch

logger = logging.getLogger(__name__)

OnBytes = Callable[[int], None]


def verify_installed(
    model: InstalledModel,
    registry: ModelRegistry,
    on_bytes: OnBytes | None = None,
    validate: Callable[[Path], CheckedCheckpoint] = validate_checkpoint,
) -> InstalledModel:
    """Check ``model`` again, offline: each file against the size and hash recorded when it was installed, then the
    engine's validator. The registry records the outcome either way; a failure raises :class:`VerificationError`.
    """
    root = Path(model.path)
    problems: list[str] = []
    for file in model.files:
        if file.sha256 is None and file.git_sha1 is None:
            continue
        found = mismatch(root / file.path, Expected(file.size, file.sha256, file.git_sha1), on_bytes)
        if found is not None:
            problems.append(f"{file.path}: {found}")
    try:
        validate(root)
    except DownloadError as exc:
        problems.append(str(exc))
    hashed = any(f.sha256 or f.git_sha1 for f in model.files)
    if problems:
        registry.update(model, verified=False, check="failed", checked_at=now_iso())
        raise VerificationError(
            f"{model.name} failed its check: " + "; ".join(problems),
            advice="Delete it and download it again.",
        )
    return registry.update(model, verified=hashed, check="sha256" if hashed else "structure", checked_at=now_iso())


def import_folder(
    folder: Path,
    registry: ModelRegistry,
    validate: Callable[[Path], CheckedCheckpoint] = validate_checkpoint,
) -> InstalledModel:
    """Register an existing checkpoint folder after the engine's validator accepted it (files are not copied).

    It is marked not verified: without the Hub's record there is no hash to check its bytes against.
    """
    folder = folder.expanduser().absolute()
    checked = validate(folder)
    name = folder.parent.name if folder.name == "original" else folder.name
    root = folder.parent if folder.name == "original" else folder
    model = InstalledModel(
        name=name,
        path=str(root),
        layout=checked.layout,
        size_bytes=checked.size_bytes,
        verified=False,
        check="structure",
        source="import",
        storage="folder",
    )
    registry.add(model)
    return model


def delete_model(model: InstalledModel, registry: ModelRegistry) -> int:
    """Remove ``model`` from the list and, unless it was imported, its files. Returns bytes freed.

    An imported folder belongs to the user: it is only forgotten. A cache copy is deleted with the hub client's own
    cache manager (blobs still used by another revision stay). A downloaded folder loses exactly the files this
    app put there, and the folder itself only if that left it empty.
    """
    freed = 0
    try:
        if model.source != "import" and model.storage == "hf-cache":
            freed = _delete_cache_revision(Path(model.path))
        elif model.source != "import":
            freed = _delete_downloaded_files(Path(model.path), model)
    except OSError as exc:
        raise classify_error(exc, what=model.name, path=Path(model.path)) from exc
    registry.remove(model.path)
    return freed


def _delete_cache_revision(snapshot: Path) -> int:
    # <cache>/models--org--name/snapshots/<commit>
    cache_dir, commit = snapshot.parents[2], snapshot.name
    strategy = scan_cache_dir(cache_dir).delete_revisions(commit)
    freed = int(strategy.expected_freed_size)
    strategy.execute()
    logger.info("deleted revision %s from %s (%d bytes)", commit, cache_dir, freed)
    return freed


def _delete_downloaded_files(root: Path, model: InstalledModel) -> int:
    freed = 0
    hub_metadata = root / ".cache" / "huggingface" / "download"
    for file in model.files:
        path = root / file.path
        if path.is_file():
            freed += path.stat().st_size
            path.unlink()
        # the hub client's per-file records for the small files it fetched into this folder
        for record in (hub_metadata / (file.path + ".metadata"), hub_metadata / (file.path + ".lock")):
            record.unlink(missing_ok=True)
    if (root / FOLDER_PARTIAL_DIR).is_dir():
        shutil.rmtree(root / FOLDER_PARTIAL_DIR)  # only this app's partial files live there
    _prune_empty(hub_metadata)
    hub_dir = hub_metadata.parent
    # The client's marker files go once no record of any other download is left beside them.
    if hub_dir.is_dir() and {p.name for p in hub_dir.iterdir()} <= {".gitignore", "CACHEDIR.TAG"}:
        for marker in hub_dir.iterdir():
            marker.unlink()
    for created in (root / "original", root / ".cache"):
        _prune_empty(created)
    with contextlib.suppress(OSError):
        root.rmdir()  # only if the download left it empty
    return freed


def _prune_empty(top: Path) -> None:
    """Remove ``top`` and the folders below it that are empty, deepest first (files are never touched)."""
    if not top.is_dir():
        return
    for folder in sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        top.rmdir()
