"""``--screenshot`` and ``--screenshot-gallery``: named states render real windows to PNGs of the asked size, in the
asked theme, waiting on conditions; the gallery writes its index; failures name the state and the condition."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.app.main import parse_args
from gpt_oss_desktop.app.shell import screenshot
from gpt_oss_desktop.app.shell.screenshot import ScreenshotError, capture, capture_gallery
from gpt_oss_desktop.app.shell.screenshot_states import STATES, Stage, State, wait_until


def pixels(path: Path) -> np.ndarray:
    """The PNG's pixels as an (height, width) array of 0xAARRGGBB values."""
    image = QImage(str(path)).convertToFormat(QImage.Format.Format_ARGB32)
    assert not image.isNull(), path
    rows = np.frombuffer(image.constBits(), dtype=np.uint32).reshape(image.height(), image.bytesPerLine() // 4)
    return rows[:, : image.width()].copy()  # a copy: the QImage (and its buffer) goes away on return


def lightness(values: np.ndarray) -> float:
    """Mean of the red, green and blue channels, 0..255."""
    return float(np.mean([(values >> shift) & 0xFF for shift in (16, 8, 0)]))


def test_a_state_renders_a_non_blank_png_of_the_asked_size(run: Any, tmp_path: Path) -> None:
    target = tmp_path / "shots" / "first-start.png"
    shot = run(capture(target, "first-start", size=(800, 600), settings_path=str(tmp_path / "s.ini")), timeout=120)
    values = pixels(target)
    assert values.shape == (600, 800)
    # Text, buttons and frames: a real window has many colours (antialiased text alone gives dozens).
    assert len(np.unique(values)) > 20
    assert (shot.state, shot.theme, shot.width, shot.height, shot.problem) == ("first-start", "light", 800, 600, "")


def test_a_window_that_cannot_be_that_small_is_reported_not_hidden(run: Any, tmp_path: Path) -> None:
    target = tmp_path / "tiny.png"
    shot = run(capture(target, "first-start", size=(320, 240)), timeout=120)
    assert shot.problem.startswith("the window cannot be 320x240: its minimum is ")
    height, width = pixels(target).shape
    assert width >= 320 and height >= 240 and (width, height) != (320, 240)


def test_a_streamed_answer_with_markdown_renders_in_dark(run: Any, tmp_path: Path) -> None:
    target = tmp_path / "markdown-dark.png"
    run(capture(target, "markdown-answer", theme="dark", size=(800, 600)), timeout=300)
    values = pixels(target)
    assert values.shape == (600, 800)
    assert len(np.unique(values)) > 50  # the highlighted code block and the table among them
    assert lightness(values) < 100, "a dark theme gives a mostly dark picture"


def test_the_theme_goes_through_the_seam_and_is_undone_after(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    before = app.palette().color(app.palette().ColorRole.Window).name()
    seen: list[tuple[QApplication, str]] = []

    def recording(target_app: QApplication, name: str) -> None:
        seen.append((target_app, name))
        screenshot.builtin_theme(target_app, name)

    monkeypatch.setattr(screenshot, "apply_theme", recording)
    run(capture(tmp_path / "light.png", "first-start", theme="light", size=(800, 600)), timeout=120)
    run(capture(tmp_path / "dark.png", "first-start", theme="dark", size=(800, 600)), timeout=120)
    assert seen == [(app, "light"), (app, "dark")]
    assert lightness(pixels(tmp_path / "dark.png")) < lightness(pixels(tmp_path / "light.png")) - 60
    assert app.palette().color(app.palette().ColorRole.Window).name() == before


def test_an_unknown_state_or_theme_is_a_clear_error(run: Any, tmp_path: Path) -> None:
    with pytest.raises(ScreenshotError, match="unknown screenshot state 'chat'; choose one of: first-start, ") as info:
        run(capture(tmp_path / "x.png", "chat"))
    assert all(name in str(info.value) for name in STATES)
    with pytest.raises(ScreenshotError, match="unknown theme 'sepia'"):
        run(capture(tmp_path / "x.png", "first-start", theme="sepia"))
    assert not (tmp_path / "x.png").exists()


def test_the_gallery_writes_every_picture_and_its_index(run: Any, tmp_path: Path) -> None:
    folder = tmp_path / "gallery"
    states = ["first-start", "download-wizard"]
    shots = run(capture_gallery(folder, themes=["light"], sizes=[(1024, 700), (800, 600)], states=states), timeout=180)
    names = [
        "first-start-light-1024x700.png",
        "first-start-light-800x600.png",
        "download-wizard-light-1024x700.png",
        "download-wizard-light-800x600.png",
    ]
    assert [shot.file for shot in shots] == names
    for shot in shots:
        assert pixels(folder / shot.file).shape == (shot.height, shot.width)
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    assert [entry["file"] for entry in index["shots"]] == names
    assert index["failures"] == []
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert all(f"]({name})" in readme for name in names)
    assert "## download-wizard" in readme


def test_a_state_whose_condition_never_holds_names_it_and_the_gallery_goes_on(
    run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def never(stage: Stage) -> None:
        await stage.wait(lambda: False, "the sky turns green")

    monkeypatch.setitem(STATES, "broken", State("broken", "Never reached.", never))
    folder = tmp_path / "gallery"
    with pytest.raises(ScreenshotError, match=r"state 'broken': the sky turns green: not so after 1 s"):
        run(capture_gallery(folder, themes=["light"], sizes=[(800, 600)], states=["broken", "first-start"], deadline=1))
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    assert [entry["file"] for entry in index["shots"]] == ["first-start-light-800x600.png"]
    assert len(index["failures"]) == 1 and "the sky turns green" in index["failures"][0]
    assert (folder / "first-start-light-800x600.png").exists()


def test_wait_until_polls_the_event_loop_until_the_condition_holds(run: Any) -> None:
    calls: list[int] = []

    def third_time() -> bool:
        calls.append(1)
        return len(calls) >= 3

    run(wait_until(third_time, "asked three times", state="any"))
    assert len(calls) == 3


def test_the_command_line_takes_states_themes_and_sizes(tmp_path: Path) -> None:
    args = parse_args(["--screenshot-gallery", str(tmp_path), "--themes", "dark", "--sizes", "1280x800, 800x600"])
    assert (args.screenshot_gallery, args.themes, args.sizes) == (tmp_path, ["dark"], [(1280, 800), (800, 600)])
    args = parse_args(["--screenshot", "x.png", "--state", "compare-done", "--theme", "dark", "--size", "800x600"])
    assert (args.state, args.theme, args.size) == ("compare-done", "dark", (800, 600))
    for wrong in (
        ["--sizes", "800by600"],
        ["--themes", "light,sepia"],
        ["--screenshot", "a", "--screenshot-gallery", "b"],
    ):
        with pytest.raises(SystemExit):
            parse_args(wrong)


def test_the_index_keeps_pictures_of_earlier_runs(tmp_path: Path) -> None:
    from gpt_oss_desktop.app.shell.screenshot import Shot, earlier_shots, merge_shots, write_index

    first = Shot("first-start", "light", 2560, 1440, 1.0, "first-start-light-2560x1440.png", 1.0)
    scaled = Shot("compare-done", "dark", 1280, 800, 2.0, "compare-done-dark-1280x800@2x.png", 2.0)
    gone = Shot("first-start", "dark", 800, 600, 1.0, "first-start-dark-800x600.png", 1.0)
    for shot in (first, scaled):
        (tmp_path / shot.file).write_bytes(b"png")
    states = [STATES["first-start"], STATES["compare-done"]]
    write_index(tmp_path, states, [first, scaled, gone], [], 3.0)
    assert earlier_shots(tmp_path) == [first, scaled]  # the picture whose file went is dropped
    again = Shot("first-start", "light", 2560, 1440, 1.0, first.file, 9.0)
    other = Shot("first-start", "light", 800, 600, 1.0, "first-start-light-800x600.png", 9.0)
    assert merge_shots(earlier_shots(tmp_path), [again, other]) == [again, scaled, other]
    write_index(tmp_path, states, merge_shots(earlier_shots(tmp_path), [again, other]), [], 4.0)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "compare-done, dark, 1280×800 at 2× scale (2560×1600 px)" in readme
    assert "](first-start-light-2560x1440.png)" in readme and "3 pictures" in readme
    (tmp_path / "index.json").write_text("not json", encoding="utf-8")
    assert earlier_shots(tmp_path) == []
