"""``--screenshot``: the scripted capture runs end to end and writes a PNG of the whole window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtGui import QImage

from gpt_oss_desktop.app.shell.screenshot import capture


def test_capture_writes_the_window_png(run: Any, tmp_path: Path) -> None:
    target = tmp_path / "shots" / "window.png"
    run(capture(target, str(tmp_path / "settings.ini")), timeout=60)
    image = QImage(str(target))
    assert not image.isNull()
    assert (image.width(), image.height()) == (1280, 900)


def test_capture_of_the_first_run_kernel_preparation(run: Any, tmp_path: Path) -> None:
    target = tmp_path / "first-run-kernels.png"
    run(capture(target, str(tmp_path / "settings.ini"), "kernels"), timeout=60)
    image = QImage(str(target))
    assert not image.isNull()
    assert (image.width(), image.height()) == (1280, 900)
