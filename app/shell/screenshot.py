"""``--screenshot FILE --state NAME`` and ``--screenshot-gallery DIR``: the window in named states, as PNGs.

One state is rendered into one PNG at one theme and size; the gallery renders every state in every theme and size
into a folder as ``<state>-<theme>-<W>x<H>.png`` (``@2x`` added at 200 % scale) and writes an index beside them:
``README.md`` (the pictures, state by state) and ``index.json`` (one entry per picture, with any problem seen).

The states (app/shell/screenshot_states.py) drive a real window over a throwaway history with a scripted model. A
picture is taken once its state's conditions hold, every Markdown view has rendered, and two frames in a row come out
identical (layouts and deferred paints done); never after a fixed wait. A dialog a state opens (the download wizard,
the model manager) is drawn centred over the window with a plain title bar, as a window manager would show it.

Theme: :data:`apply_theme` is the seam. By default it uses ``app/shell/theme.py``'s ``apply_theme(app, name)``
when that module exists (the theme work lands there), else a basic Fusion light or dark palette of its own; the
lead wires the real theme at merge. The application's look is restored after each picture, so tests and later
states start from the same look.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

import torch
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QStyleFactory, QWidget

from gpt_oss_desktop.app.chat.rendering.markdown_view import MarkdownView
from gpt_oss_desktop.app.shell.screenshot_states import (
    DEADLINE_S,
    STATES,
    ScreenshotError,
    Stage,
    State,
    state_named,
    wait_until,
)

__all__ = [
    "DEFAULT_SIZES",
    "DEFAULT_STATE",
    "STATES",
    "THEMES",
    "ScreenshotError",
    "Shot",
    "apply_theme",
    "capture",
    "capture_gallery",
]

logger = logging.getLogger(__name__)

THEMES: Final = ("light", "dark", "system")
DEFAULT_STATE: Final = "demo-chat-reasoning-open"
DEFAULT_SIZES: Final = ((1280, 800), (800, 600))
INDEX_NAMES: Final = ("README.md", "index.json")
_THEME_MODULE: Final = "gpt_oss_desktop.app.shell.theme"
# Room around a dialog drawn over the window, and its drawn title bar.
_DIALOG_MARGIN: Final = 24
_TITLE_BAR: Final = 28

ThemeApplier = Callable[[QApplication, str], None]


# -- theme --------------------------------------------------------------------------------------------------------


def builtin_theme(app: QApplication, name: str) -> None:
    """A basic look without app/shell/theme.py: Fusion with its light palette, or a dark one; "system" keeps the
    platform's palette."""
    if name == "system":
        return
    app.setStyle(QStyleFactory.create("Fusion"))
    if name == "light":
        app.setPalette(app.style().standardPalette())
        return
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#202124",
        QPalette.ColorRole.WindowText: "#e8eaed",
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: "#2a2b2e",
        QPalette.ColorRole.ToolTipBase: "#2a2b2e",
        QPalette.ColorRole.ToolTipText: "#e8eaed",
        QPalette.ColorRole.PlaceholderText: "#9aa0a6",
        QPalette.ColorRole.Text: "#e8eaed",
        QPalette.ColorRole.Button: "#2d2e31",
        QPalette.ColorRole.ButtonText: "#e8eaed",
        QPalette.ColorRole.BrightText: "#ff6b6b",
        QPalette.ColorRole.Light: "#3c3d41",
        QPalette.ColorRole.Midlight: "#333438",
        QPalette.ColorRole.Mid: "#5f6368",
        QPalette.ColorRole.Dark: "#111214",
        QPalette.ColorRole.Shadow: "#000000",
        QPalette.ColorRole.Highlight: "#4c8df6",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: "#8ab4f8",
        QPalette.ColorRole.LinkVisited: "#c58af9",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#7f8388"))
    app.setPalette(palette)


def _app_theme(app: QApplication, name: str) -> None:
    """app/shell/theme.py's ``apply_theme(app, name)`` when the module exists, else :func:`builtin_theme`."""
    try:
        module = importlib.import_module(_THEME_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != _THEME_MODULE:
            raise  # the theme module exists but something it imports does not: a real error
        module = None
    real = getattr(module, "apply_theme", None)
    if callable(real):
        real(app, name)
    else:
        builtin_theme(app, name)


# The seam: replace it (tests, or the lead at merge) to change how a theme is applied.
apply_theme: ThemeApplier = _app_theme


@contextlib.contextmanager
def _themed(app: QApplication, name: str) -> Iterator[None]:
    """Apply theme ``name`` for the duration, then give the application back its style, palette and style sheet."""
    style, palette, sheet = app.style().name(), app.palette(), app.styleSheet()
    flash = app.cursorFlashTime()
    app.setCursorFlashTime(0)  # a steady cursor: a blink must not make two frames of a still window differ
    try:
        apply_theme(app, name)
        yield
    finally:
        app.setStyleSheet(sheet)
        app.setStyle(QStyleFactory.create(style))
        app.setPalette(palette)
        app.setCursorFlashTime(flash)


# -- pictures -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    """One picture: which state, theme and size (logical pixels; the PNG is ``scale`` times that), where it went,
    how long its state took to reach, and any problem seen (e.g. a window that could not shrink to the size)."""

    state: str
    theme: str
    width: int
    height: int
    scale: float
    file: str
    seconds: float
    problem: str = ""


def shot_name(state: str, theme: str, size: tuple[int, int], scale: float = 1.0) -> str:
    suffix = "" if scale == 1 else f"@{scale:g}x"
    return f"{state}-{theme}-{size[0]}x{size[1]}{suffix}.png"


async def capture(
    path: Path,
    state: str = DEFAULT_STATE,
    *,
    theme: str = "light",
    size: tuple[int, int] = DEFAULT_SIZES[0],
    settings_path: str | None = None,
    deadline: float = DEADLINE_S,
) -> Shot:
    """Render the window in ``state`` at ``theme`` and ``size`` to the PNG ``path``."""
    shots = await _render(state_named(state), theme, [size], lambda _size: path, settings_path, deadline)
    return shots[0]


async def capture_gallery(
    folder: Path,
    *,
    themes: Sequence[str] = ("light", "dark"),
    sizes: Sequence[tuple[int, int]] = DEFAULT_SIZES,
    states: Sequence[str] | None = None,
    deadline: float = DEADLINE_S,
) -> list[Shot]:
    """Render every state (or ``states``) in every theme and size into ``folder``, then write its index.

    A state that fails does not stop the others: the index lists it, and ScreenshotError (naming every failed
    state and its condition) is raised once the rest are written.
    """
    chosen = [state_named(name) for name in (states or STATES)]
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    shots: list[Shot] = []
    failures: list[str] = []
    for state in chosen:
        for theme in themes:
            try:
                target = functools.partial(_gallery_file, folder, state.name, theme)
                shots += await _render(state, theme, sizes, target, None, deadline)
            except ScreenshotError as exc:
                logger.error("%s", exc)
                failures.append(f"{state.name} ({theme}): {exc}")
    wall = round(time.perf_counter() - started, 1)
    # Pictures an earlier run left in the folder (other sizes, another scale) stay listed beside this run's.
    listed = merge_shots(earlier_shots(folder), shots)
    listed_states = [
        state for state in STATES.values() if state in chosen or any(s.state == state.name for s in listed)
    ]
    write_index(folder, listed_states, listed, failures, wall)
    logger.info("gallery: %d pictures in %s in %.1f s", len(shots), folder, wall)
    if failures:
        raise ScreenshotError("; ".join(failures))
    return shots


def _gallery_file(folder: Path, state: str, theme: str, size: tuple[int, int]) -> Path:
    return folder / shot_name(state, theme, size, _scale())


async def _render(
    state: State,
    theme: str,
    sizes: Sequence[tuple[int, int]],
    target: Callable[[tuple[int, int]], Path],
    settings_path: str | None,
    deadline: float,
) -> list[Shot]:
    """Reach ``state`` once in ``theme``, then take one picture per size (the window resized, as a user would)."""
    if theme not in THEMES:
        raise ScreenshotError(f"unknown theme {theme!r}; choose one of: {', '.join(THEMES)}")
    app = QApplication.instance()
    assert isinstance(app, QApplication), "screenshots need a QApplication"
    shots: list[Shot] = []
    with _themed(app, theme), _one_torch_thread(), tempfile.TemporaryDirectory(prefix="gpt-oss-shot-") as scratch:
        started = time.perf_counter()
        stage = Stage(state.name, Path(scratch), settings_path=settings_path, deadline=deadline)
        try:
            window = stage.open_window(first_run_kernels=state.first_run_kernels, tools=state.tools)
            window.resize(*sizes[0])
            window.show()
            await state.reach(stage)
            reached = time.perf_counter() - started
            for size in sizes:
                problem = await _resize(stage, size)
                image = await _settled_frame(stage)
                path = target(size)
                path.parent.mkdir(parents=True, exist_ok=True)
                if not image.save(str(path)):
                    raise ScreenshotError(f"state {state.name!r}: could not write {path}")
                shots.append(Shot(state.name, theme, *size, _scale(), path.name, round(reached, 2), problem))
                logger.info("saved %s (%s, %s, %dx%d)", path, state.name, theme, *size)
        finally:
            await stage.close()
    return shots


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """The scripted model's work per token is a few small tensor ops, where handing work to a second thread costs
    more than it saves: on a busy 2-core machine one thread streams about three times faster."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _scale() -> float:
    app = QApplication.instance()
    return round(app.devicePixelRatio(), 2) if isinstance(app, QApplication) else 1.0


async def _resize(stage: Stage, size: tuple[int, int]) -> str:
    """Resize the window to ``size`` (and fit a dialog inside it); a problem in words if it cannot be that small."""
    window = stage.win
    window.resize(*size)

    def expected() -> QSize:
        # A top-level window never gets smaller than its layout's minimum: that is where it ends up if the size is
        # less (asked again on each poll: the minimum can change as the layout settles).
        return QSize(*size).expandedTo(window.minimumSize())

    await stage.wait(
        lambda: window.size() == expected(), f"the window is resized to {size[0]}x{size[1]} or its minimum"
    )
    dialog = stage.dialog
    if dialog is not None:
        if stage.dialog_size is None:  # the size it opened at, which a smaller window's picture shrinks to fit
            stage.dialog_size = dialog.size().expandedTo(dialog.sizeHint())
        room = QSize(window.width() - 2 * _DIALOG_MARGIN, window.height() - 2 * _DIALOG_MARGIN - _TITLE_BAR)
        dialog.resize(stage.dialog_size.boundedTo(room))
        fitted = dialog.size()
        await stage.wait(lambda: dialog.size() == fitted, "the dialog is resized")
    if window.size() != QSize(*size):
        smallest = window.minimumSize()
        problem = f"the window cannot be {size[0]}x{size[1]}: its minimum is {smallest.width()}x{smallest.height()}"
        logger.warning("state %r: %s", stage.state, problem)
        return problem
    return ""


async def _settled_frame(stage: Stage) -> QImage:
    """The picture, once every Markdown view has rendered and two frames in a row are identical."""
    window = stage.win
    await stage.wait(
        lambda: not any(view.pending for view in window.findChildren(MarkdownView)), "every Markdown view rendered"
    )
    frames: list[QImage] = []

    def settled() -> bool:
        frames.append(_frame(stage))
        return len(frames) >= 2 and frames[-1] == frames[-2]

    await wait_until(
        settled, "two frames in a row are the same (layout settled)", state=stage.state, timeout=stage.deadline
    )
    return frames[-1]


def _frame(stage: Stage) -> QImage:
    window = stage.win
    picture = window.grab()
    dialog = stage.dialog
    if dialog is not None and dialog.isVisible():
        _draw_dialog(picture, dialog, window.size())
    return picture.toImage()


def _draw_dialog(picture: QPixmap, dialog: QWidget, window: QSize) -> None:
    """Draw ``dialog`` centred over the window picture, with a shadow and a title bar as a window manager would."""
    content = dialog.grab()
    width, height = dialog.width(), dialog.height() + _TITLE_BAR
    frame = QRect((window.width() - width) // 2, (window.height() - height) // 2, width, height)
    palette = dialog.palette()
    painter = QPainter(picture)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        for spread, alpha in ((8, 18), (5, 28), (2, 40)):
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, alpha))
            painter.drawRoundedRect(frame.adjusted(-spread, -spread + 2, spread, spread + 2), 8 + spread, 8 + spread)
        bar = QRect(frame.left(), frame.top(), width, _TITLE_BAR)
        painter.fillRect(bar, palette.color(QPalette.ColorRole.Window).darker(112))
        painter.setPen(palette.color(QPalette.ColorRole.WindowText))
        font = QFont(dialog.font())
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(bar, Qt.AlignmentFlag.AlignCenter, dialog.windowTitle())
        painter.drawPixmap(frame.left(), frame.top() + _TITLE_BAR, content)
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRect(frame.adjusted(0, 0, -1, -1))
    finally:
        painter.end()


# -- index --------------------------------------------------------------------------------------------------------


def earlier_shots(folder: Path) -> list[Shot]:
    """The pictures ``folder``'s index lists whose files are still there, of states that still exist."""
    try:
        entries = json.loads((folder / "index.json").read_text(encoding="utf-8"))["shots"]
    except (OSError, ValueError, KeyError, TypeError):
        return []  # no index yet, or not one this tool wrote: nothing to keep
    shots = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            shot = Shot(**entry)
        except TypeError:
            continue
        if shot.state in STATES and (folder / shot.file).is_file():
            shots.append(shot)
    return shots


def merge_shots(earlier: Sequence[Shot], new: Sequence[Shot]) -> list[Shot]:
    """``earlier`` with each picture ``new`` re-rendered replaced in place, then the rest of ``new``."""
    fresh = {shot.file: shot for shot in new}
    kept = [fresh.pop(shot.file, shot) for shot in earlier]
    return kept + [shot for shot in new if shot.file in fresh]


def shot_label(shot: Shot) -> str:
    scale = f" at {shot.scale:g}× scale ({round(shot.width * shot.scale)}×{round(shot.height * shot.scale)} px)"
    return f"{shot.state}, {shot.theme}, {shot.width}×{shot.height}{scale if shot.scale != 1 else ''}"


def write_index(
    folder: Path, states: Sequence[State], shots: Sequence[Shot], failures: Sequence[str], wall: float
) -> None:
    """``README.md`` (the pictures, state by state) and ``index.json`` (the entries) in ``folder``."""
    lines = [
        "# Screenshot gallery",
        "",
        f"Rendered by `gpt-oss-desktop --screenshot-gallery`: {len(shots)} pictures (the last run took {wall:.0f} s). "
        "The answers come from a scripted stand-in model; the history is a throwaway sample. Sizes are the window's "
        "in logical pixels; a picture at 2× scale (`--scale 2`, as on a 200 % display) has twice as many pixels "
        "each way.",
        "",
    ]
    for state in states:
        lines += [f"## {state.name}", "", state.summary, ""]
        for shot in (s for s in shots if s.state == state.name):
            label = shot_label(shot)
            lines += [f"{label}{' — ' + shot.problem if shot.problem else ''}", "", f"![{label}]({shot.file})", ""]
    if failures:
        lines += ["## Failed", "", *(f"- {failure}" for failure in failures), ""]
    (folder / "README.md").write_text("\n".join(lines), encoding="utf-8")
    index = {"wall_seconds": wall, "shots": [asdict(s) for s in shots], "failures": list(failures)}
    (folder / "index.json").write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
