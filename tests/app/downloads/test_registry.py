"""models.json: round trips, atomic writes, a damaged file moved aside, a failed write changing nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gpt_oss_desktop.app.downloads import InstalledModel, ModelRegistry, PendingDownload
from gpt_oss_desktop.app.downloads.errors import RegistryError
from gpt_oss_desktop.app.downloads.registry import InstalledFile


def model(path: str, name: str = "gpt-oss-20b", **changes: object) -> InstalledModel:
    fields: dict[str, object] = {
        "name": name,
        "path": path,
        "layout": "original",
        "size_bytes": 13_761_264_768,
        "verified": True,
        "check": "sha256",
        "source": "download",
        "storage": "hf-cache",
        "repo_id": "openai/gpt-oss-20b",
        "commit": "c" * 40,
        "files": (InstalledFile("original/model.safetensors", 13_761_264_768, "a" * 64),),
    }
    fields.update(changes)
    return InstalledModel(**fields)  # type: ignore[arg-type]


def test_models_and_pending_download_survive_a_reopen(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "data" / "models.json")
    first, second = model(str(tmp_path / "a")), model(str(tmp_path / "b"), "gpt-oss-120b")
    registry.add(first)
    registry.add(second)
    pending = PendingDownload("gpt-oss-120b", "openai/gpt-oss-120b", "main", "folder", str(tmp_path / "m"))
    registry.set_pending(pending)
    reopened = ModelRegistry(registry.path)
    assert reopened.models() == [first, second] and reopened.pending == pending
    assert reopened.find(tmp_path / "a") == first and reopened.find(tmp_path / "zzz") is None


def test_adding_the_same_folder_replaces_its_entry_and_remove_forgets_it(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models.json")
    registry.add(model(str(tmp_path / "a")))
    updated = registry.update(registry.models()[0], verified=False, check="failed")
    assert registry.models() == [updated] and not updated.verified
    registry.remove(str(tmp_path / "a") + "/")
    assert registry.models() == [] and ModelRegistry(registry.path).models() == []


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path / "models.json")
    for k in range(5):
        registry.add(model(str(tmp_path / str(k))))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models.json"]
    data = json.loads(registry.path.read_text())
    assert data["version"] == 1 and len(data["models"]) == 5 and data["pending"] is None


def test_a_damaged_file_is_moved_aside_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "models.json"
    path.write_text('{"version": 1, "models": [{"name": ')
    registry = ModelRegistry(path)
    assert registry.models() == [] and registry.load_warning is not None
    assert "moved to" in registry.load_warning and (tmp_path / "models.json.corrupt").read_text().startswith('{"v')
    registry.add(model(str(tmp_path / "a")))
    assert len(ModelRegistry(path).models()) == 1


def test_a_failed_write_raises_a_typed_error_and_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    registry = ModelRegistry(folder / "models.json")
    registry.add(model(str(tmp_path / "a")))
    # Make the folder path a file's child: no temporary file can be created there.
    registry.path = tmp_path / "file" / "models.json"
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(RegistryError, match="Cannot save the list of installed models"):
        registry.add(model(str(tmp_path / "b")))
    assert [m.path for m in registry.models()] == [str(tmp_path / "a")]
    assert os.listdir(folder) == ["models.json"]
