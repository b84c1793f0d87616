"""The load-error banner over real folders through the real loader: the path once, "not a model folder" for a
folder that holds no model, and the three ways on (open another folder, download a model, try the demo)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from gpt_oss_desktop.app.backends.chat_backend import DEMO_MODEL, LoadError, LoadErrorKind
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.shell import main_window as main_window_module
from gpt_oss_desktop.app.shell.main_window import MainWindow
from tests.app.conftest import next_emission
from tests.helpers import broken_checkpoints as broken

SHOTS = os.environ.get("GPTOSS_TEST_SHOTS")  # a folder: the banners are saved there as PNGs to look at


def _fail_to_load(run: Any, window: MainWindow, folder: Path) -> LoadError:
    async def body() -> LoadError:
        return await next_emission(window.load_failed, lambda: window.load_model(str(folder)), timeout=60)

    error: LoadError = run(body(), timeout=90)
    assert window.banner.isVisible()
    if SHOTS:
        window.grab().save(str(Path(SHOTS) / f"banner-{folder.name}.png"))
    return error


def test_a_missing_folder_is_named_once(run: Any, make_window: Any, tmp_path: Path) -> None:
    window = make_window(LocalEngine())  # the app's own loader
    folder = tmp_path / "nonexistent"
    error = _fail_to_load(run, window, folder)
    assert error.kind is LoadErrorKind.MISSING_FILES
    shown = window.banner.title.text()
    assert shown.count(str(folder)) == 1, shown


@pytest.mark.parametrize("build", broken.NOT_A_MODEL, ids=lambda build: build.__name__)
def test_a_folder_that_is_no_model_says_so(run: Any, make_window: Any, tmp_path: Path, build: broken.Builder) -> None:
    window = make_window(LocalEngine())
    folder = build(tmp_path)
    error = _fail_to_load(run, window, folder)
    assert error.kind is LoadErrorKind.NOT_A_MODEL
    shown = window.banner.title.text()
    assert f"{folder} is not a model folder" in shown and shown.count(str(folder)) == 1, shown
    advice = window.banner.advice.text()
    assert "damaged" not in advice and "Download the model again" not in advice
    for button in (window.banner.open_button, window.banner.download_button, window.banner.demo_button):
        assert button.isVisible()


def test_a_truncated_checkpoint_is_still_damaged(run: Any, make_window: Any, tmp_path: Path) -> None:
    window = make_window(LocalEngine())
    error = _fail_to_load(run, window, broken.truncated_weights(tmp_path))
    assert error.kind is LoadErrorKind.INVALID_CHECKPOINT
    assert "Download the model again" in window.banner.advice.text()


def test_the_banner_buttons_open_a_folder_the_download_wizard_and_the_demo(
    run: Any, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = make_window(LocalEngine())
    _fail_to_load(run, window, broken.empty_folder(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(
        main_window_module.QFileDialog, "getExistingDirectory", lambda *_args, **_kw: calls.append("folder") or ""
    )
    monkeypatch.setattr(window.model_downloads, "open_wizard", lambda *_args: calls.append("wizard"))
    monkeypatch.setattr(window, "load_model", lambda ref: calls.append(f"load {ref}"))
    window.banner.open_button.click()
    window.banner.download_button.click()
    window.banner.demo_button.click()
    assert calls == ["folder", "wizard", f"load {DEMO_MODEL}"]
