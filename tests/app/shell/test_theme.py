"""The theme: WCAG contrast of every colour pair the palettes draw, the live switch (View > Theme, remembered),
and the bundled icons recoloured for the theme."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QToolButton

from gpt_oss_desktop.app.chat.chat_view import ChatView
from gpt_oss_desktop.app.chat.stats import AnswerStats
from gpt_oss_desktop.app.settings import THEME_KEY
from gpt_oss_desktop.app.shell import icons, theme
from gpt_oss_desktop.app.shell.theme import DARK, LIGHT, Palette, ThemeMode
from gpt_oss_desktop.engine.events import FinishReason
from gpt_oss_desktop.engine.harmony import ReasoningEffort
from tests.app.conftest import scripted_engine

# WCAG 2.2: 1.4.3 (text, 4.5:1; the 3:1 for large text is not used: captions and stats are small) and 1.4.11
# (3:1 for the parts of controls and graphics needed to see them: the effort badge's outline, input borders, the
# focus ring, icons). Disabled controls and decorative borders are exempt and not listed.
TEXT = 4.5
MONOKAI_BACKGROUND = "#272822"  # the dark code style's box (app/chat/rendering/markdown.py)
NON_TEXT = 3.0


def text_pairs(p: Palette) -> list[tuple[str, str, str]]:
    """(what, foreground, background) for every text colour on every surface it is drawn on."""
    pairs = []
    for bg_name in ("window", "surface", "sunken", "bubble", "hover"):
        bg = getattr(p, bg_name)
        pairs.append((f"text on {bg_name}", p.text, bg))
        pairs.append((f"muted text on {bg_name}", p.text_muted, bg))
    pairs += [
        ("link on window", p.link, p.window),
        ("link on surface", p.link, p.surface),
        ("link on sunken (reasoning)", p.link, p.sunken),
        ("error on surface", p.danger, p.surface),
        ("error on window", p.danger, p.window),
        ("button text on accent (Send, selection)", p.on_accent, p.accent),
        ("text on selected list row", p.text, p.bubble),
    ]
    return pairs


def non_text_pairs(p: Palette) -> list[tuple[str, str, str]]:
    return [
        ("effort badge outline on the card", p.outline, p.surface),
        ("input border on window", p.outline, p.window),
        ("input border on surface", p.outline, p.surface),
        ("focus ring on surface", p.accent, p.surface),
        ("focus ring on window", p.accent, p.window),
        ("icon (text colour) on window", p.text, p.window),
        ("icon on accent (Send)", p.on_accent, p.accent),
    ]


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio, (L1 + 0.05) / (L2 + 0.05) with L the relative luminance of sRGB."""

    def luminance(colour: str) -> float:
        c = QColor(colour)
        channels = []
        for value in (c.red(), c.green(), c.blue()):
            s = value / 255
            channels.append(s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4)
        r, g, b = channels
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_formula_matches_known_ratios() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic "just fails" grey
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1.0)


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=lambda p: p.name)
def test_every_text_pair_reaches_4_5_to_1(palette: Palette) -> None:
    failing = [f"{what}: {ratio:.2f}" for what, fg, bg in text_pairs(palette) if (ratio := contrast(fg, bg)) < TEXT]
    assert not failing


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=lambda p: p.name)
def test_outlines_and_icons_reach_3_to_1(palette: Palette) -> None:
    failing = [
        f"{what}: {ratio:.2f}" for what, fg, bg in non_text_pairs(palette) if (ratio := contrast(fg, bg)) < NON_TEXT
    ]
    assert not failing


def test_the_user_bubble_and_the_card_stand_apart_from_the_window() -> None:
    # Not a WCAG rule, but the point of the bubble: it must be visibly tinted, not the window's colour again.
    for p in (LIGHT, DARK):
        assert p.bubble != p.window and p.surface != p.window
        assert contrast(p.bubble, p.surface) > 1.1


@pytest.fixture
def light_again(qapp: QApplication) -> Iterator[None]:
    """Tests that switch the application's theme leave it light for the tests after them."""
    yield
    theme.apply_theme(None, ThemeMode.LIGHT)


def test_stylesheet_follows_the_palette(light_again: None) -> None:
    light = theme.apply_theme(None, ThemeMode.LIGHT)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    light_sheet = app.styleSheet()
    assert light.palette is LIGHT and LIGHT.bubble in light_sheet and DARK.bubble not in light_sheet
    assert app.palette().color(app.palette().ColorRole.Window) == QColor(LIGHT.window)
    theme.apply_theme(None, ThemeMode.DARK)
    assert app.styleSheet() != light_sheet and DARK.bubble in app.styleSheet()
    assert app.palette().color(app.palette().ColorRole.Text) == QColor(DARK.text)


def test_system_follows_the_desktop_scheme(light_again: None) -> None:
    theme.apply_theme(None, "light")
    assert theme.palette_for(ThemeMode.SYSTEM, Qt.ColorScheme.Dark) is DARK
    assert theme.palette_for(ThemeMode.SYSTEM, Qt.ColorScheme.Light) is LIGHT
    # A desktop that does not say: the platform palette's lightness decides (the test application's is light).
    assert theme.palette_for(ThemeMode.SYSTEM, Qt.ColorScheme.Unknown) is LIGHT
    assert theme.palette_for(ThemeMode.DARK, Qt.ColorScheme.Light) is DARK
    assert ThemeMode.parse("dark") is ThemeMode.DARK and ThemeMode.parse("sepia") is ThemeMode.SYSTEM


def test_view_theme_menu_switches_live_and_is_remembered(
    make_window: Any, settings: QSettings, qtbot: Any, light_again: None
) -> None:
    theme.apply_theme(None, "light")
    backend, _ = scripted_engine()
    window = make_window(backend)
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    bubble = window.chat.add_user("hello")
    message = window.chat.add_assistant(ReasoningEffort.HIGH)
    message.append_answer("```py\nx = 1\n```")
    message.finish(AnswerStats(0, 3, None, None, 0.1, 30.0, FinishReason.STOP))
    assert window.theme.mode is ThemeMode.LIGHT  # nothing saved yet: it keeps the look the application wears

    window.theme.actions[ThemeMode.DARK].trigger()
    assert settings.value(THEME_KEY) == "dark" and window.theme.applied.palette is DARK
    assert DARK.surface in app.styleSheet()
    window.stack.setCurrentWidget(window.chat)
    QApplication.processEvents()
    # The widgets already on screen restyle: the bubble is drawn in the dark tint, the badge keeps its outline.
    assert _dominant(bubble.grab().toImage()) == DARK.bubble
    badge = message.badge.grab().toImage()
    assert DARK.outline in {badge.pixelColor(x, 0).name() for x in range(badge.width())}
    # Code blocks follow: the answer (transparent on its card) re-renders them in the dark code style.
    qtbot.waitUntil(lambda: MONOKAI_BACKGROUND in message.answer.toHtml().lower(), timeout=5000)

    window.theme.actions[ThemeMode.LIGHT].trigger()
    assert settings.value(THEME_KEY) == "light" and LIGHT.surface in app.styleSheet()
    qtbot.waitUntil(lambda: MONOKAI_BACKGROUND not in message.answer.toHtml().lower(), timeout=5000)

    # The choice survives a restart: a new window over the same settings starts in the saved theme.
    settings.setValue(THEME_KEY, "dark")
    again = make_window(backend)
    assert again.theme.mode is ThemeMode.DARK and again.theme.actions[ThemeMode.DARK].isChecked()
    assert DARK.surface in app.styleSheet()


def test_icons_are_bundled_with_their_licence() -> None:
    for name in icons.ICON_NAMES:
        svg = icons.svg_source(name)
        assert "currentColor" in svg and "<svg" in svg
    assert "ISC" in (icons.ICON_DIR / "LICENSE").read_text(encoding="utf-8")
    assert "lucide-static" in (icons.ICON_DIR / "README.md").read_text(encoding="utf-8")
    with pytest.raises(KeyError):
        icons.svg_source("no-such-icon")


@pytest.mark.parametrize("palette", [LIGHT, DARK], ids=lambda p: p.name)
def test_icons_render_in_the_palette_text_colour(qapp: QApplication, palette: Palette) -> None:
    pixmap = icons.render("square", palette.text, 24, 2.0)
    assert pixmap.devicePixelRatio() == 2.0 and pixmap.width() == 48  # sharp on a 2x screen
    image = pixmap.toImage()
    # Lucide's square: an 18-unit rect at x = y = 3 (of 24) stroked 2 units wide, so its left edge covers x = 2..4
    # units, pixels 4..7 at 2x; the middle row is well clear of the rounded corners.
    edge = image.pixelColor(6, 24)
    assert edge.alpha() == 255 and edge.name() == palette.text
    assert image.pixelColor(24, 24).alpha() == 0  # inside the square: nothing drawn

    qicon = icons.icon("square", palette.text, palette.text_disabled)
    assert not qicon.isNull()
    normal = qicon.pixmap(24, 24).toImage()
    assert palette.text in {normal.pixelColor(x, 12).name() for x in range(normal.width())}


def test_recoloured_files_feed_the_stylesheet(light_again: None) -> None:
    files = icons.write_recoloured(DARK.text, "dark")
    assert set(files) == set(icons.ICON_NAMES)
    assert DARK.text in files["copy"].read_text(encoding="utf-8")
    assert "currentColor" not in files["copy"].read_text(encoding="utf-8")
    theme.apply_theme(None, ThemeMode.DARK)
    view = ChatView()
    message = view.add_assistant(ReasoningEffort.LOW)
    message.show()
    QApplication.processEvents()
    button = message.copy_button
    assert isinstance(button, QToolButton) and not button.icon().isNull()
    image = button.icon().pixmap(16, 16).toImage()
    colours = {image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())}
    assert DARK.text in colours
    view.deleteLater()


def test_window_actions_and_buttons_get_icons(make_window: Any) -> None:
    backend, _ = scripted_engine()
    window = make_window(backend)
    for attribute in ("new_chat_action", "compare_action", "regenerate_action", "edit_last_action"):
        assert not getattr(window, attribute).icon().isNull(), attribute
    assert not window.model_downloads.download_action.icon().isNull()
    QApplication.processEvents()
    assert not window.composer.send_button.icon().isNull()
    assert not window.composer.stop_button.icon().isNull()


def _dominant(image: QImage) -> str:
    counts: dict[str, int] = {}
    for x in range(image.width()):
        for y in range(image.height()):
            name = image.pixelColor(x, y).name()
            counts[name] = counts.get(name, 0) + 1
    return max(counts, key=lambda k: counts[k])


def test_a_new_window_keeps_the_worn_theme_until_one_is_chosen(make_window: Any, light_again: None) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    backend, _ = scripted_engine()
    # As the screenshot tool does: the application is themed dark, then a window opens over fresh settings.
    theme.apply_theme(app, "dark")
    window = make_window(backend)
    assert window.theme.mode is ThemeMode.DARK and DARK.surface in app.styleSheet()
    # Once something else replaced the stylesheet, a new window applies its saved (here: no) choice: System.
    app.setStyleSheet("")
    again = make_window(backend)
    assert again.theme.mode is ThemeMode.SYSTEM and theme.current_theme(app) is not None


def _ink_runs(image: QImage, background: QColor, rows: range, columns: range) -> list[tuple[int, int]]:
    """Runs of columns (first, last) holding a pixel far from ``background`` in ``rows``: the glyphs, icons and
    chevrons drawn on it."""

    def ink(x: int, y: int) -> bool:
        c = image.pixelColor(x, y)
        return (
            abs(c.red() - background.red()) + abs(c.green() - background.green()) + abs(c.blue() - background.blue())
            > 120
        )

    runs: list[tuple[int, int]] = []
    for x in columns:
        if any(ink(x, y) for y in rows):
            if runs and runs[-1][1] == x - 1:
                runs[-1] = (runs[-1][0], x)
            else:
                runs.append((x, x))
    return runs


@pytest.mark.parametrize("mode", [ThemeMode.LIGHT, ThemeMode.DARK])
def test_the_sampling_button_gives_its_chevron_room(
    qtbot: Any, settings: QSettings, mode: ThemeMode, light_again: None
) -> None:
    from gpt_oss_desktop.app.chat.composer import Composer

    applied = theme.apply_theme(None, mode)
    composer = Composer(settings)
    qtbot.addWidget(composer)
    composer.resize(600, 120)
    composer.show()
    button = composer.settings_button
    qtbot.waitUntil(button.isVisible)
    image = button.grab().toImage()
    width, height = image.width(), image.height()
    background = image.pixelColor(4, height // 2)  # inside the outline, left of the icon
    assert background.name() == applied.palette.surface  # filled like the effort box beside it
    runs = _ink_runs(image, background, range(3, height - 3), range(3, width - 3))
    assert len(runs) >= 3, runs  # the letters (and the icon, in a window), the chevron
    *_, text_end, chevron = runs
    assert chevron[1] - chevron[0] + 1 >= 6, f"a chevron of {chevron} is too small to see"
    # Apart from the text, but close enough to read as part of the control, as the effort box's arrow does.
    assert 6 <= chevron[0] - text_end[1] - 1 <= 14, f"the chevron {chevron} and the text {text_end}"
    assert width - 1 - chevron[1] >= 6, f"the chevron {chevron} is crammed into the corner of {width} px"
    # Centred on the text's line, not riding high in the corner.
    rows = [
        y
        for y in range(2, height - 2)
        for x in range(chevron[0], chevron[1] + 1)
        if _ink_runs(image, background, range(y, y + 1), range(x, x + 1))
    ]
    assert abs((min(rows) + max(rows)) / 2 - (height - 1) / 2) <= 2, (rows, height)


@pytest.mark.parametrize("mode", [ThemeMode.LIGHT, ThemeMode.DARK])
def test_check_boxes_and_radio_buttons_stand_out_in_both_themes(qtbot: Any, mode: ThemeMode, light_again: None) -> None:
    from PySide6.QtWidgets import QCheckBox, QRadioButton, QStyle, QStyleOptionButton

    palette = theme.apply_theme(None, mode).palette
    for kind, element in (
        (QCheckBox, QStyle.SubElement.SE_CheckBoxIndicator),
        (QRadioButton, QStyle.SubElement.SE_RadioButtonIndicator),
    ):
        for checked in (False, True):
            button = kind("An option")
            button.setChecked(checked)
            qtbot.addWidget(button)
            button.show()
            qtbot.waitUntil(button.isVisible)
            option = QStyleOptionButton()
            option.initFrom(button)
            box = button.style().subElementRect(element, option, button)
            image = button.grab().toImage()
            colours = {
                image.pixelColor(x, y).name()
                for x in range(box.left(), box.right() + 1)
                for y in range(box.top(), box.bottom() + 1)
            }
            # Its outline (unchecked) or its accent fill (checked) reaches 3:1 against the window, as WCAG asks of a
            # control's boundary: Fusion's own outline all but disappeared on the dark window.
            assert max(contrast(c, palette.window) for c in colours) >= 3.0, (kind.__name__, checked, colours)
            if checked:
                assert palette.accent in colours
                if kind is QCheckBox:
                    # The tick, in the on-accent colour (antialiased: the nearest pixel to it is enough).
                    assert min(contrast(c, palette.on_accent) for c in colours) < 1.3, colours
