"""Help ▸ About gpt-oss desktop: the versions a bug report needs, the CPU kernels' level and the licence, and Copy
details puts the same text on the clipboard, with no path in the user's home, chat text or settings value."""

from __future__ import annotations

import platform
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import PySide6
import pytest
from PySide6.QtCore import QSettings, qVersion
from PySide6.QtGui import QGuiApplication

from gpt_oss_desktop.app.backends.kernel_preparation import KernelPreparation
from gpt_oss_desktop.app.backends.local_engine import LocalEngine
from gpt_oss_desktop.app.settings import LAST_MODEL_KEY
from gpt_oss_desktop.app.shell import about_details
from gpt_oss_desktop.app.shell.about_details import LICENCE, AboutDetails, kernel_level
from gpt_oss_desktop.app.shell.about_dialog import COPIED_TEXT, AboutDialog
from gpt_oss_desktop.kernels.cpu_kernel_status import KernelState, KernelStatus
from tests.app.conftest import next_emission

REPO = Path(__file__).resolve().parents[3]
HOME = str(Path.home())


def test_about_shows_the_versions_and_copy_details_copies_them(make_window: Any, settings: QSettings, run: Any) -> None:
    model_folder = f"{HOME}/models/private-finetune"  # a settings value with a home path: never copied
    settings.setValue(LAST_MODEL_KEY, model_folder)
    status = KernelStatus(KernelState.READY, "avx2", 0.2)
    kernels = KernelPreparation(prepare=lambda _progress: status)
    window = make_window(LocalEngine(), kernels=kernels)
    run(next_emission(kernels.finished, kernels.start))
    window.help.about_action.trigger()
    (dialog,) = window.findChildren(AboutDialog)
    assert dialog.isVisible() and dialog.values["CPU kernels"].text() == "avx2 (ready)"
    dialog.copy_button.click()
    copied = QGuiApplication.clipboard().text()
    assert copied == dialog.details.text() and dialog.copied.text() == COPIED_TEXT
    for expected in (
        f"gpt-oss desktop: {version('gpt-oss-desktop')}",
        f"Python: {platform.python_version()} ({platform.python_implementation()})",
        f"Qt: {qVersion()} (PySide6 {PySide6.__version__})",
        f"torch: {version('torch')}",
        f"openai-harmony: {version('openai-harmony')}",
        "CPU kernels: avx2 (ready)",
        f"OS: {platform.platform()}",
        f"Licence: {LICENCE}",
    ):
        assert expected in copied.splitlines()
    assert HOME not in copied and model_folder not in copied


def test_the_licence_is_pyprojects() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert LICENCE == project["license"] == about_details.licence()


def sample(**changes: str) -> AboutDetails:
    values = dict(
        app_version="1.0", python="3.11", qt="6.9", pyside="6.9", torch="2.8", harmony="0.0.8",
        kernels="avx2 (ready)", os="Linux", licence=LICENCE,
    )  # fmt: skip
    return AboutDetails(**(values | changes))


def test_a_home_path_that_slips_into_a_value_is_copied_as_a_tilde(qtbot: Any) -> None:
    details = sample(torch=f"2.8 (from {HOME}/venv)")
    dialog = AboutDialog(details)
    qtbot.addWidget(dialog)
    dialog.copy_details()
    copied = QGuiApplication.clipboard().text()
    assert "torch: 2.8 (from ~/venv)" in copied.splitlines() and HOME not in copied


@pytest.mark.parametrize(
    ("status", "building", "expected"),
    [
        (KernelStatus(KernelState.BUILT, "avx512", 9.0), False, "avx512 (built)"),
        (KernelStatus(KernelState.OFF, None, 0.0, "switched off by GPTOSS_CPU_FUSED=0"), False, "off (the torch path"),
        (KernelStatus(KernelState.FAILED, "avx2", 1.0, f"g++ failed in {HOME}/.cache/x"), False, "avx2: could not"),
        (None, True, "being built"),
        (None, False, "not prepared yet"),
    ],
)
def test_the_kernel_line_names_the_level_and_never_a_failures_paths(
    status: KernelStatus | None, building: bool, expected: str
) -> None:
    line = kernel_level(status, building=building)
    assert expected in line and HOME not in line
