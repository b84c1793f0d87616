"""The main window's Model menu: download wizard, manager, installed models, and resuming after a restart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL
from gpt_oss_desktop.app.downloads import HubCacheDestination, HubSettings, ModelDownload, ModelRegistry
from gpt_oss_desktop.app.downloads.download_wizard import PAGE_DONE, PAGE_DOWNLOAD
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary
from gpt_oss_desktop.app.settings import LAST_MODEL_KEY
from gpt_oss_desktop.app.shell.main_window import MainWindow
from tests.app.conftest import next_emission, scripted_engine, until
from tests.app.downloads.test_download_wizard import CATALOG, probe
from tests.helpers.hub_fixtures import FAST_RETRY, cut_download
from tests.helpers.hub_server import Fault, HubServer

WEIGHTS = "original/model.safetensors"


@pytest.fixture
def window_with_models(
    make_window: Callable[..., MainWindow], model_registry: ModelRegistry
) -> Callable[..., MainWindow]:
    def make(hub: HubSettings | None = None) -> MainWindow:
        window = make_window(scripted_engine()[0], models=ModelLibrary(model_registry))
        window.model_downloads.hub = hub
        window.model_downloads.wizard_options = {
            "catalog": CATALOG,
            "probe": probe(),
            "retry": FAST_RETRY,
            "confirm": lambda _t, _x: True,
        }
        return window

    return make


def model_menu(window: MainWindow) -> QMenu:
    return next(a.menu() for a in window.menuBar().actions() if a.text() == "&Model")  # type: ignore[return-value]


def test_download_then_load_from_the_installed_models_menu(
    run: Any,
    window_with_models: Callable[..., MainWindow],
    hub_settings: HubSettings,
    model_registry: ModelRegistry,
    settings: QSettings,
) -> None:
    window = window_with_models(hub_settings)
    texts = [a.text() for a in model_menu(window).actions()]
    assert {"&Download a model…", "&Manage models…", "&Installed models"} <= set(texts)
    installed_menu = window.model_downloads.installed_menu
    assert installed_menu is not None and [a.text() for a in installed_menu.actions()] == ["No models installed yet"]

    async def body() -> None:
        window.empty.download_button.click()  # the empty state offers the download too
        wizard = window.model_downloads.wizard
        assert wizard is not None and wizard.isVisible()
        wizard.next()
        wizard.next()
        await until(lambda: wizard.currentId() == PAGE_DONE, timeout=30)
        path = wizard.installed_model.path  # type: ignore[union-attr]
        # The submenu was rebuilt when the registry changed.
        assert [a.toolTip() for a in installed_menu.actions()] == [path]
        loaded = await next_emission(window.model_loaded, wizard.accept)  # Finish, with "Load it now" checked
        assert loaded is not None and settings.value(LAST_MODEL_KEY) == path
        # ...and the submenu loads it too.
        await next_emission(window.model_loaded, installed_menu.actions()[0].trigger)
        assert [m.path for m in model_registry.models()] == [path]

    run(body())


def test_an_unfinished_download_is_offered_at_startup_and_resumed(
    run: Any,
    window_with_models: Callable[..., MainWindow],
    hub_settings: HubSettings,
    local_hub: HubServer,
    model_registry: ModelRegistry,
) -> None:
    local_hub.add_fault(Fault("reset", WEIGHTS, after_bytes=1024 * 1024 + 1))
    cut_download(CATALOG[0], hub_settings, model_registry)  # the previous session ended here
    window = window_with_models(hub_settings)

    async def body() -> None:
        await until(lambda: window.model_downloads.resume_prompt is not None)
        prompt = window.model_downloads.resume_prompt
        assert prompt is not None and prompt.isVisible() and not prompt.isModal()
        assert "gpt-oss-20b did not finish" in prompt.text()
        window.model_downloads.resume_button.click()
        wizard = window.model_downloads.wizard
        assert wizard is not None and wizard.currentId() == PAGE_DOWNLOAD
        await until(lambda: wizard.currentId() == PAGE_DONE, timeout=30)

    run(body())
    assert local_hub.file_gets(WEIGHTS)[-1].range_start == 1024 * 1024
    assert model_registry.pending is None and len(model_registry.models()) == 1


def test_closing_the_window_mid_download_pauses_and_keeps_it_pending(
    no_quit_on_close: None,
    run: Any,
    window_with_models: Callable[..., MainWindow],
    hub_settings: HubSettings,
    local_hub: HubServer,
    model_registry: ModelRegistry,
) -> None:
    local_hub.throttle(0.2)
    window = window_with_models(hub_settings)
    window.model_downloads.wizard_options["event_interval"] = 0

    async def body() -> None:
        wizard = window.model_downloads.open_wizard()
        assert wizard is not None
        wizard.next()
        wizard.next()
        page = wizard.download_page
        await until(lambda: page.file_bar.value() > 0 and WEIGHTS in page.file_label.text())
        window.close()
        await until(lambda: not wizard.runner.busy)

    run(body())
    pending = ModelRegistry(model_registry.path).pending
    assert pending is not None and pending.model_key == "gpt-oss-20b"
    assert model_registry.models() == []


def test_manage_models_opens_the_manager_and_it_loads(
    run: Any,
    window_with_models: Callable[..., MainWindow],
    hub_settings: HubSettings,
    model_registry: ModelRegistry,
) -> None:
    ModelDownload(
        CATALOG[0], HubCacheDestination(hub_settings.cache_dir, CATALOG[0].repo_id), hub_settings, model_registry
    ).run()
    window = window_with_models(hub_settings)
    window.model_downloads.manage_action.trigger()
    manager = window.model_downloads.manager
    assert manager is not None and manager.isVisible() and manager.table.rowCount() == 1

    async def body() -> None:
        assert await next_emission(window.model_loaded, manager.load_button.click) is not None

    run(body())


def test_manager_of_a_window_with_the_demo_loaded_lists_it_and_offers_a_download(
    run: Any, window_with_models: Callable[..., MainWindow], hub_settings: HubSettings
) -> None:
    window = window_with_models(hub_settings)
    run(next_emission(window.model_loaded, lambda: window.load_model(DEMO_MODEL)))  # the double, named as the demo
    window.model_downloads.manage_action.trigger()
    manager = window.model_downloads.manager
    assert manager is not None and manager.empty and "Demo model (toy)" in manager.loaded_note.text()
    manager.empty_download_button.click()
    assert window.model_downloads.wizard is not None and window.model_downloads.wizard.isVisible()
