"""The model manager over a real registry and real files: list, verify again, delete, open, import, load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QDialogButtonBox

import gpt_oss_desktop.app.downloads.validate as validate_module
import gpt_oss_desktop.app.models.model_manager as manager_module
from gpt_oss_desktop.app.downloads import (
    FolderDestination,
    HubCacheDestination,
    HubSettings,
    ModelDownload,
    ModelRegistry,
)
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary
from gpt_oss_desktop.app.models.model_manager import COLUMNS, ModelManager
from gpt_oss_desktop.engine.paths import DATA_DIR_ENV
from tests.app.conftest import next_emission, until
from tests.helpers.hub_fixtures import FAST_RETRY, catalog_entry, write_test_checkpoint

WEIGHTS = "original/model.safetensors"


def download(hub: HubSettings, registry: ModelRegistry, folder: Path | None = None) -> Path:
    model = catalog_entry()
    destination = (
        FolderDestination(folder, model.repo_id) if folder else HubCacheDestination(hub.cache_dir, model.repo_id)
    )
    return Path(ModelDownload(model, destination, hub, registry, retry=FAST_RETRY).run().path)


@pytest.fixture
def make_manager(qtbot: Any, model_registry: ModelRegistry) -> Callable[..., ModelManager]:
    def make(**kwargs: Any) -> ModelManager:
        kwargs.setdefault("confirm", lambda _title, _text: True)
        manager = ModelManager(ModelLibrary(model_registry), **kwargs)
        qtbot.addWidget(manager)
        manager.show()
        return manager

    return make


def row(manager: ModelManager, index: int = 0) -> dict[str, str]:
    return {name: manager.table.item(index, c).text() for c, name in enumerate(COLUMNS)}  # type: ignore[union-attr]


def test_lists_models_and_verifies_them_again(
    run: Any, make_manager: Callable[..., ModelManager], hub_settings: HubSettings, model_registry: ModelRegistry
) -> None:
    path = download(hub_settings, model_registry)
    manager = make_manager()
    assert row(manager) == {
        "Name": "gpt-oss-20b",
        "Layout": "original",
        "Size": "4.3 MB",
        "Verified": "✔ SHA-256",
        "Path": str(path),
    }
    checked = run(manager.verify_selected())
    assert checked is not None and checked.verified and "every file matches its SHA-256" in manager.status.text()

    blob = (path / WEIGHTS).resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x01
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    assert run(manager.verify_selected()) is None
    assert "failed its check" in manager.status.text() and "SHA-256" in manager.status.text()
    assert row(manager)["Verified"] == "✘ failed its last check"
    assert not ModelRegistry(model_registry.path).models()[0].verified


def test_delete_asks_first_then_removes_the_cache_revision(
    run: Any, make_manager: Callable[..., ModelManager], hub_settings: HubSettings, model_registry: ModelRegistry
) -> None:
    path = download(hub_settings, model_registry)
    answers = [False, True]
    manager = make_manager(confirm=lambda _t, text: "Delete gpt-oss-20b (4.3 MB) from disk?" in text and answers.pop(0))
    assert run(manager.delete_selected()) is False and path.exists()
    assert run(manager.delete_selected()) is True
    assert not path.exists() and not list((hub_settings.cache_dir).rglob("*.safetensors"))
    assert manager.table.rowCount() == 0 and model_registry.models() == []
    assert "freed" in manager.status.text()


def test_delete_of_a_downloaded_folder_removes_only_what_was_downloaded(
    run: Any,
    make_manager: Callable[..., ModelManager],
    hub_settings: HubSettings,
    model_registry: ModelRegistry,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    download(hub_settings, model_registry, folder)
    manager = make_manager()
    assert run(manager.delete_selected()) is True
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_import_checks_the_folder_with_the_engine_validator(
    run: Any, make_manager: Callable[..., ModelManager], tmp_path: Path, model_registry: ModelRegistry
) -> None:
    good = write_test_checkpoint(tmp_path / "my-model" / "original")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((good / "config.json").read_text())
    (broken / "model.safetensors").write_bytes((good / "model.safetensors").read_bytes()[:5000])
    opened: list[Path] = []
    manager = make_manager(open_folder=opened.append, choose_folder=lambda: None)

    assert run(manager.import_from(broken)) is None
    assert "Not imported." in manager.status.text() and "broken" in manager.status.text()
    assert model_registry.models() == []

    imported = run(manager.import_from(good))
    assert imported is not None and imported.name == "my-model" and imported.path == str(tmp_path / "my-model")
    assert row(manager)["Verified"] == "structure only (no checksums)" and row(manager)["Layout"] == "original"
    manager.open_button.click()
    assert opened == [tmp_path / "my-model"]
    # Verify again on an import: the validator only, it stays "not verified"
    assert run(manager.verify_selected()) is not None and "structure is valid" in manager.status.text()
    # Removing an import forgets it and leaves the files alone.
    assert run(manager.delete_selected()) is True
    assert (good / "model.safetensors").exists() and model_registry.models() == []


def test_load_emits_the_selected_path(
    run: Any, make_manager: Callable[..., ModelManager], hub_settings: HubSettings, model_registry: ModelRegistry
) -> None:
    path = download(hub_settings, model_registry)
    manager = make_manager()
    assert run(next_emission(manager.load_requested, manager.load_button.click)) == str(path)


# ---------------------------------------------------------------------------------------------------- issue 15
# "Checking …" must always end with a result: before, any exception other than EngineError/OSError escaped the
# validator, the status stayed at "Checking …" forever and the error surfaced only at exit.
def test_import_of_a_config_that_broke_the_parser_shows_the_error(
    run: Any, make_manager: Callable[..., ModelManager], tmp_path: Path, model_registry: ModelRegistry
) -> None:
    folder = write_test_checkpoint(tmp_path / "odd" / "original")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt_oss", "rope_scaling": "yarn"}))
    manager = make_manager(choose_folder=lambda: None)
    assert run(manager.import_from(folder), timeout=10) is None  # an AttributeError before
    assert "Not imported." in manager.status.text() and "rope_scaling" in manager.status.text()
    assert "Checking" not in manager.status.text() and model_registry.models() == []


@pytest.mark.parametrize("step", ["validator", "manager"])
def test_an_unexpected_exception_ends_checking_with_the_error_shown(
    run: Any,
    make_manager: Callable[..., ModelManager],
    tmp_path: Path,
    model_registry: ModelRegistry,
    monkeypatch: pytest.MonkeyPatch,
    step: str,
) -> None:
    # A stand-in for a bug (no real input is known to raise one any more): the engine's loader, or the import
    # step around it, raises an exception type nobody handles.
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))

    def broken(*_args: object) -> object:
        raise ZeroDivisionError("integer division or modulo by zero")

    target = validate_module if step == "validator" else manager_module
    monkeypatch.setattr(target, "load_checkpoint" if step == "validator" else "import_folder", broken)
    folder = write_test_checkpoint(tmp_path / "my-model" / "original")
    manager = make_manager(choose_folder=lambda: None)
    assert run(manager.import_from(folder), timeout=10) is None
    text = manager.status.text()
    assert "Not imported." in text and "ZeroDivisionError" in text and "Checking" not in text
    assert model_registry.models() == [] and manager.import_button.isEnabled()
    if step == "manager":  # the traceback is kept for a bug report
        (log,) = (tmp_path / "data" / "logs").glob("crash-*.log")
        assert str(log) in text and "ZeroDivisionError" in log.read_text()


def test_an_exception_escaping_a_step_is_still_shown_not_left_for_exit(
    run: Any, make_manager: Callable[..., ModelManager], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last net behind the steps' own handlers: a step that raises (a stand-in for a future bug) is reported
    # in the dialog as soon as its task ends, not as "Task exception was never retrieved" at exit.
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    manager = make_manager(choose_folder=lambda: tmp_path)

    async def broken_import(_folder: Path) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(manager, "import_from", broken_import)
    manager.import_button.click()

    async def shown() -> None:
        while "Something went wrong" not in manager.status.text():
            await asyncio.sleep(0.01)

    run(shown(), timeout=10)
    assert "KeyError" in manager.status.text() and manager.import_button.isEnabled()


# ------------------------------------------------------------------------------------------------- issue 17
# With nothing installed the manager was an empty grid titled "Installed models": no text, no Close, no demo.
def test_empty_manager_says_what_to_do_lists_the_loaded_demo_and_closes(
    run: Any, make_manager: Callable[..., ModelManager], tmp_path: Path, model_registry: ModelRegistry
) -> None:
    good = write_test_checkpoint(tmp_path / "my-model" / "original")
    manager = make_manager(loaded_model=lambda: "Demo model (toy)", choose_folder=lambda: tmp_path / "my-model")
    assert manager.empty and manager.empty_page.isVisible() and not manager.table.isVisible()
    assert "No models installed yet" in manager.empty_text.text()
    assert manager.empty_download_button.isVisible() and manager.empty_open_button.isVisible()
    assert not manager.load_button.isVisible()  # nothing to select: the row buttons are hidden
    assert manager.loaded_note.isVisible()
    assert "Demo model (toy)" in manager.loaded_note.text() and "built into the app" in manager.loaded_note.text()

    run(next_emission(manager.download_requested, manager.empty_download_button.click))

    async def import_by_click() -> None:
        manager.empty_open_button.click()  # imports the chosen folder, which then is listed
        await until(lambda: not manager.empty and not manager.runner.busy)

    run(import_by_click())
    assert good.exists() and row(manager)["Name"] == "my-model" and manager.load_button.isVisible()

    close = manager.close_buttons.button(QDialogButtonBox.StandardButton.Close)
    assert close is not None and close.isVisible()
    close.click()
    assert not manager.isVisible()


def test_manager_without_a_loaded_model_names_none(make_manager: Callable[..., ModelManager]) -> None:
    manager = make_manager()
    assert manager.empty and not manager.loaded_note.isVisible()
