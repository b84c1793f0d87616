"""Model ▸ 8-bit attention weights: a saved choice that the next local load uses, shown in the status bar, with a
note when it changes under a loaded model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.models.weights_menu import ACTION_TEXT
from gpt_oss_desktop.app.settings import Q8_WEIGHTS_KEY
from gpt_oss_desktop.app.shell.main_window import MainWindow
from tests.app.conftest import next_emission
from tests.helpers.models import tiny_checkpoint


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


def _menu_texts(window: MainWindow) -> list[str]:
    return [action.text() for action in window.model_menu.actions()]


def test_off_by_default_and_saved_when_checked(make_window: Any, settings: QSettings) -> None:
    engine = LocalEngine()
    window = make_window(engine)
    action = window.weights_setting.action
    assert ACTION_TEXT in _menu_texts(window) and action.isCheckable() and not action.isChecked()
    assert engine.weights_mode == "bf16"
    action.setChecked(True)
    assert engine.weights_mode == "q8"
    settings.sync()
    assert QSettings(settings.fileName(), QSettings.Format.IniFormat).value(Q8_WEIGHTS_KEY) in (True, "true")
    action.setChecked(False)
    assert engine.weights_mode == "bf16"


def test_a_saved_choice_applies_at_start(make_window: Any, settings: QSettings) -> None:
    settings.setValue(Q8_WEIGHTS_KEY, True)
    engine = LocalEngine()
    window = make_window(engine)
    assert window.weights_setting.action.isChecked() and engine.weights_mode == "q8"


def test_the_loaded_model_shows_its_weights_and_a_change_waits_for_the_next_load(
    run: Any, make_window: Any, tiny_dir: Path
) -> None:
    window = make_window(LocalEngine(max_context=64))
    action = window.weights_setting.action
    device = window.status.device_label

    async def body() -> None:
        action.setChecked(True)
        info = await next_emission(window.model_loaded, lambda: window.load_model(str(tiny_dir)), timeout=60)
        assert info.weights == "q8"
        assert device.text() == "CPU · 8-bit weights" and "8 bits" in device.toolTip()
        action.setChecked(False)  # the loaded model keeps its 8-bit weights: a note says when the change applies
        assert "off from the next model load" in window.statusBar().currentMessage()
        assert device.text() == "CPU · 8-bit weights"
        info = await next_emission(window.model_loaded, lambda: window.load_model(str(tiny_dir)), timeout=60)
        assert info.weights == "bf16" and device.text() == "CPU" and device.toolTip() == ""

    run(body(), timeout=120)


def test_the_window_backend_passes_the_mode_to_its_local_engine(make_window: Any) -> None:
    from gpt_oss_desktop.app.backends.backend_switch import SwitchableBackend
    from gpt_oss_desktop.app.backends.remote_backend import RemoteBackend

    local = LocalEngine()
    backend = SwitchableBackend(local, RemoteBackend(lambda _name: None))  # no saved servers: never resolved here
    window = make_window(backend)
    window.weights_setting.action.setChecked(True)
    assert backend.weights_mode == "q8" and local.weights_mode == "q8"
    window.weights_setting.action.setChecked(False)
    assert local.weights_mode == "bf16"
    local.close()
