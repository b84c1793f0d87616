"""The download wizard driven page by page (offscreen Qt, qasync loop), against the local Hub with the real client."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import constants
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWizard

from gpt_oss_desktop.app.downloads import (
    HubCacheDestination,
    HubSettings,
    MachineProbe,
    ModelDownload,
    ModelRegistry,
    human_bytes,
)
from gpt_oss_desktop.app.downloads.download_wizard import (
    PAGE_DONE,
    PAGE_DOWNLOAD,
    PAGE_LOCATION,
    PAGE_MODEL,
    PAGE_VERIFY,
    DownloadPage,
    DownloadWizard,
)
from gpt_oss_desktop.app.downloads.hardware import GpuInfo
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary
from tests.app.conftest import until
from tests.helpers.hub_fixtures import FAST_RETRY, catalog_entry, cut_download
from tests.helpers.hub_server import Fault, HubServer

GB = 10**9
WEIGHTS = "original/model.safetensors"
CATALOG = (catalog_entry(), catalog_entry(shards=2, repo_id="openai/gpt-oss-120b"))


def probe(gpu_free: float | None = 80, disk_free: float = 500) -> MachineProbe:
    gpu = (lambda: GpuInfo("Test GPU", int(gpu_free * GB), 80 * GB)) if gpu_free is not None else (lambda: None)
    return MachineProbe(gpu=gpu, ram=lambda: 64 * GB, disk_free=lambda _path: int(disk_free * GB))


def to_download_page(wizard: DownloadWizard) -> DownloadPage:
    """Next past the model and location pages with their defaults."""
    wizard.next()
    wizard.next()
    return wizard.download_page


async def transferring(wizard: DownloadWizard) -> DownloadPage:
    """The download page once the weights have started to arrive."""
    page = to_download_page(wizard)
    await until(lambda: page.file_bar.value() > 0 and WEIGHTS in page.file_label.text())
    return page


@pytest.fixture
def make_wizard(qtbot: Any, model_registry: ModelRegistry) -> Callable[..., DownloadWizard]:
    def make(hub: HubSettings, **kwargs: Any) -> DownloadWizard:
        kwargs.setdefault("probe", probe())
        kwargs.setdefault("retry", FAST_RETRY)
        kwargs.setdefault("confirm", lambda _title, _text: True)  # never a modal box in tests
        wizard = DownloadWizard(ModelLibrary(model_registry), hub, catalog=CATALOG, **kwargs)
        qtbot.addWidget(wizard)
        wizard.show()
        return wizard

    return make


def test_choose_download_verify_done(
    run: Any, make_wizard: Callable[..., DownloadWizard], hub_settings: HubSettings, model_registry: ModelRegistry
) -> None:
    wizard = make_wizard(hub_settings)
    installed: list[object] = []
    wizard.installed.connect(installed.append)

    async def body() -> None:
        page = wizard.model_page
        assert wizard.currentId() == PAGE_MODEL
        await until(lambda: "fits on GPU" in page.verdict_labels["gpt-oss-20b"].text())
        assert "Test GPU" in page.machine_label.text() and "64.0 GB RAM" in page.machine_label.text()
        assert f"Download {human_bytes(CATALOG[0].download_bytes)}" in page.detail_labels["gpt-oss-20b"].text()
        page.radios["gpt-oss-120b"].click()
        wizard.next()
        assert wizard.currentId() == PAGE_LOCATION and wizard.model.key == "gpt-oss-120b"
        location = wizard.location_page
        assert str(hub_settings.cache_dir) in location.cache_radio.text() and location.cache_radio.isChecked()
        assert location.isComplete() and "free; the download needs" in location.status.text()
        wizard.next()
        assert wizard.currentId() == PAGE_DOWNLOAD
        await until(lambda: wizard.currentId() == PAGE_DONE, timeout=30)
        assert wizard.download_page.total_bar.value() == 1000
        assert wizard.verify_page.bar.value() == 1000
        assert "verified against the Hub's checksums" in wizard.done_page.label.text()
        assert wizard.load_now

    run(body())
    assert [m.name for m in model_registry.models()] == ["gpt-oss-120b"] and installed == model_registry.models()
    assert wizard.installed_model is not None and Path(wizard.installed_model.path).is_dir()


def test_pause_and_resume_on_the_download_page(
    run: Any,
    make_wizard: Callable[..., DownloadWizard],
    hub_settings: HubSettings,
    local_hub: HubServer,
    tmp_path: Path,
) -> None:
    local_hub.throttle(0.15)  # ~0.7 s for the weights: time to press Pause in the middle
    wizard = make_wizard(hub_settings, event_interval=0)

    async def body() -> None:
        wizard.next()
        wizard.location_page.folder_edit.setText(str(tmp_path / "m"))
        assert wizard.location_page.folder_radio.isChecked()
        wizard.next()
        page = wizard.download_page
        await until(lambda: WEIGHTS in page.file_label.text() and page.file_bar.value() > 0)
        QTest.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
        await until(lambda: page.pause_button.text() == "Resume")
        assert "Paused" in page.status.text() and wizard.currentId() == PAGE_DOWNLOAD
        partial = tmp_path / "m" / ".cache" / "gpt-oss-desktop" / (WEIGHTS + ".incomplete")
        kept = partial.stat().st_size
        assert 0 < kept < local_hub.state.repos["openai/gpt-oss-20b"].files[WEIGHTS].size
        local_hub.throttle(0)
        QTest.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
        await until(lambda: wizard.currentId() == PAGE_DONE, timeout=30)
        assert local_hub.file_gets(WEIGHTS)[-1].range_start == kept

    run(body())


def test_401_shows_a_token_prompt_and_the_token_is_used(
    run: Any, make_wizard: Callable[..., DownloadWizard], hub_settings: HubSettings, local_hub: HubServer
) -> None:
    local_hub.require_token("hf_letmein")
    wizard = make_wizard(hub_settings)

    async def body() -> None:
        page = to_download_page(wizard)
        await until(lambda: page.token_row.isVisible())
        assert "needs a valid token" in page.status.text() and page.retry_button.isVisible()
        QTest.keyClicks(page.token_edit, "hf_letmein")
        QTest.mouseClick(page.token_button, Qt.MouseButton.LeftButton)
        await until(lambda: wizard.currentId() == PAGE_DONE, timeout=30)
        assert wizard.hub.token == "hf_letmein"

    run(body())


def test_offline_mode_is_explained_on_the_download_page(
    run: Any, make_wizard: Callable[..., DownloadWizard], tmp_path: Path, model_registry: ModelRegistry
) -> None:
    # no `online` fixture: HF_HUB_OFFLINE=1 from tests/conftest.py is in force
    wizard = make_wizard(HubSettings.from_environment({"HF_HUB_CACHE": str(tmp_path / "cache")}))

    async def body() -> None:
        page = to_download_page(wizard)
        await until(lambda: page.retry_button.isVisible())
        assert "Offline mode is on" in page.status.text() and "HF_HUB_OFFLINE" in page.status.text()
        assert not page.token_row.isVisible() and not page.isComplete()
        page.status.setText("")
        page.retry_button.click()  # still offline: the same message again, nothing else
        await until(lambda: "Offline mode is on" in page.status.text())
        assert wizard.currentId() == PAGE_DOWNLOAD

    run(body())
    assert model_registry.pending is None and model_registry.models() == []


def test_too_little_disk_space_blocks_the_location_page(
    run: Any, make_wizard: Callable[..., DownloadWizard], hub_settings: HubSettings
) -> None:
    wizard = make_wizard(hub_settings, probe=probe(gpu_free=None, disk_free=0.2))

    async def body() -> None:
        verdict = wizard.model_page.verdict_labels["gpt-oss-20b"]
        await until(lambda: "does not fit" in verdict.text())
        assert "needs 1.1 GB of free disk; 200.0 MB free" in verdict.text()
        wizard.next()
        page = wizard.location_page
        assert not page.isComplete()
        assert "Not enough free space" in page.status.text() and "200.0 MB is free" in page.status.text()
        assert not wizard.button(QWizard.WizardButton.NextButton).isEnabled()
        wizard.next()  # refused by the page's validation too
        assert wizard.currentId() == PAGE_LOCATION

    run(body())


def test_an_existing_cache_copy_is_used_without_network(
    run: Any,
    make_wizard: Callable[..., DownloadWizard],
    hub_settings: HubSettings,
    local_hub: HubServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other_tool = ModelRegistry(tmp_path / "elsewhere.json")  # e.g. `hf download`: files in the cache, not in our list
    ModelDownload(
        CATALOG[0], HubCacheDestination(hub_settings.cache_dir, CATALOG[0].repo_id), hub_settings, other_tool
    ).run()
    local_hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    wizard = make_wizard(HubSettings(local_hub.url, hub_settings.cache_dir, offline=True))
    requests = len(local_hub.requests)

    async def body() -> None:
        wizard.next()
        page = wizard.location_page
        assert "A complete copy of gpt-oss-20b is already here" in page.status.text()
        assert page.nextId() == PAGE_VERIFY
        wizard.next()
        assert wizard.currentId() == PAGE_VERIFY
        await until(lambda: wizard.currentId() == PAGE_DONE, timeout=30)

    run(body())
    assert len(local_hub.requests) == requests
    assert wizard.installed_model is not None and wizard.installed_model.source == "existing"
    assert wizard.installed_model.verified


def test_a_pending_download_reopens_on_the_download_page_and_resumes(
    run: Any,
    make_wizard: Callable[..., DownloadWizard],
    hub_settings: HubSettings,
    local_hub: HubServer,
    model_registry: ModelRegistry,
) -> None:
    local_hub.add_fault(Fault("reset", WEIGHTS, after_bytes=2 * 1024 * 1024 + 1))
    cut_download(CATALOG[0], hub_settings, model_registry)
    pending = ModelRegistry(model_registry.path).pending
    assert pending is not None
    wizard = make_wizard(hub_settings, resume=pending)

    async def body() -> None:
        assert wizard.currentId() == PAGE_DOWNLOAD and wizard.model.key == "gpt-oss-20b"
        await until(lambda: wizard.currentId() == PAGE_DONE, timeout=30)

    run(body())
    assert local_hub.file_gets(WEIGHTS)[-1].range_start == 2 * 1024 * 1024
    assert model_registry.pending is None


def test_cancel_asks_then_stops_and_forgets_the_pending_download(
    no_quit_on_close: None,
    run: Any,
    make_wizard: Callable[..., DownloadWizard],
    hub_settings: HubSettings,
    local_hub: HubServer,
    model_registry: ModelRegistry,
) -> None:
    local_hub.throttle(0.2)
    answers = [False, True]
    asked: list[str] = []

    def confirm(title: str, text: str) -> bool:
        asked.append(title)
        return answers.pop(0)

    wizard = make_wizard(hub_settings, confirm=confirm, event_interval=0)

    async def body() -> None:
        await transferring(wizard)
        wizard.reject()  # "no": keeps going
        assert wizard.isVisible() and wizard.runner.busy
        wizard.reject()  # "yes"
        assert not wizard.isVisible()
        await until(lambda: not wizard.runner.busy)

    run(body())
    assert asked == ["Stop the download?", "Stop the download?"]
    assert model_registry.pending is None and model_registry.models() == []


def test_cancel_after_pause_forgets_the_pending_download_but_keeps_the_files(
    no_quit_on_close: None,
    run: Any,
    make_wizard: Callable[..., DownloadWizard],
    hub_settings: HubSettings,
    local_hub: HubServer,
    model_registry: ModelRegistry,
) -> None:
    local_hub.throttle(0.2)
    wizard = make_wizard(hub_settings, event_interval=0)

    async def body() -> None:
        page = await transferring(wizard)
        page.pause_button.click()
        await until(lambda: page.pause_button.text() == "Resume")
        assert model_registry.pending is not None
        wizard.reject()
        assert not wizard.isVisible()

    run(body())
    assert model_registry.pending is None
    copy = HubCacheDestination(hub_settings.cache_dir, CATALOG[0].repo_id).find_local_copy(CATALOG[0])
    assert copy is not None and copy.partial_bytes > 0 and not copy.complete
