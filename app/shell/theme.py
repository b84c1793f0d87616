"""The app's design system in one place: spacing, type sizes, radii and colours as tokens, a light and a dark
palette, and the one stylesheet (QSS) built from a palette.

The theme is applied once, to the QApplication (a QPalette plus the stylesheet), never per widget. Widgets ask for
a look by a dynamic property the stylesheet targets, e.g. ``frame.setProperty("role", "user-bubble")``, and for an
icon by ``button.setProperty("iconName", "copy")`` (the names in :data:`icons.ICON_NAMES`). Modules below the shell
(chat, compare, history) cannot import this one (the import contract in pyproject.toml), so properties are the
whole interface between them and the theme.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.app.shell import icons

logger = logging.getLogger(__name__)


class ThemeMode(enum.Enum):
    """What the user picked in View > Theme; SYSTEM follows the desktop's light or dark setting."""

    SYSTEM = "system"
    LIGHT = "light"
    DARK = "dark"

    @classmethod
    def parse(cls, value: object) -> ThemeMode:
        """A stored setting back to a mode; anything unknown (an older or hand-edited file) means SYSTEM."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.SYSTEM


@dataclass(frozen=True)
class Spacing:
    """Pixels between and inside things; layouts and the stylesheet take their margins from here."""

    xs: int = 4
    sm: int = 8
    md: int = 12
    lg: int = 16
    xl: int = 24


@dataclass(frozen=True)
class TypeScale:
    """Font sizes relative to the body text. The body keeps the desktop's own font and size (the user's
    accessibility choice); captions and headings scale from it, and never below ``min_pt``."""

    caption: float = 0.9
    title: float = 1.15
    display: float = 1.6
    min_pt: float = 8.0

    def points(self, body_pt: float, scale: float) -> str:
        """A QSS font size: ``scale`` times ``body_pt``, in points with one decimal."""
        return f"{max(self.min_pt, body_pt * scale):.1f}pt"


@dataclass(frozen=True)
class Radii:
    """Corner radii in pixels: controls, panels, message bubbles and cards."""

    sm: int = 6
    md: int = 8
    lg: int = 14
    badge: int = 8  # at most half the badge's height, or Qt draws square corners


@dataclass(frozen=True)
class Palette:
    """The colours of one theme, as ``#rrggbb`` strings.

    Text pairs are checked for WCAG contrast in tests/app/shell/test_theme.py: every text colour on every surface
    it is drawn on reaches 4.5:1 (captions included, since they are small); outlines that carry meaning (the
    effort badge, input fields, the focus ring, icons) reach 3:1 against what surrounds them (WCAG 1.4.11).
    """

    name: str
    dark: bool
    window: str  # the window and the chat column
    surface: str  # assistant cards, menus, inputs, buttons
    sunken: str  # the reasoning panel inside a card
    bubble: str  # the user's messages: a tint of the accent
    hover: str  # a hovered button or menu item
    border: str  # dividers and card edges (decorative: no contrast requirement)
    outline: str  # outlines that must be seen: the effort badge, input fields (3:1)
    text: str
    text_muted: str  # captions, stats, reasoning, placeholders (still 4.5:1: they are small)
    text_disabled: str  # inactive controls (exempt from WCAG contrast)
    accent: str  # the primary button's fill, the focus ring
    on_accent: str  # text on the accent fill
    link: str
    danger: str  # error text
    scrollbar: str


LIGHT = Palette(
    name="light",
    dark=False,
    window="#f6f7f9",
    surface="#ffffff",
    sunken="#f1f3f6",
    bubble="#e3ebfd",
    hover="#e9ecf1",
    border="#dfe2e8",
    outline="#878d99",
    text="#1b1d22",
    text_muted="#575d69",
    text_disabled="#a4a9b3",
    accent="#2d5bd0",
    on_accent="#ffffff",
    link="#2451c2",
    danger="#b3261e",
    scrollbar="#c4c8d0",
)

DARK = Palette(
    name="dark",
    dark=True,
    window="#16171a",
    surface="#1f2125",
    sunken="#191a1e",
    bubble="#25324e",
    hover="#2c2f35",
    border="#30333a",
    outline="#767c88",
    text="#e7e9ed",
    text_muted="#a6abb5",
    text_disabled="#5f646e",
    accent="#3e6ee0",
    on_accent="#ffffff",
    link="#93b4ff",
    danger="#ff8d85",
    scrollbar="#464a52",
)

# Icons that sit on accent-filled push buttons (the composer's Send).
ON_ACCENT_ICONS = ("send",)

SPACING = Spacing()
TYPE = TypeScale()
RADII = Radii()


def palette_for(mode: ThemeMode, scheme: Qt.ColorScheme | None = None) -> Palette:
    """The palette for ``mode``; SYSTEM asks the desktop (``scheme``, default: Qt's colour scheme now)."""
    if mode is ThemeMode.LIGHT:
        return LIGHT
    if mode is ThemeMode.DARK:
        return DARK
    if scheme is None:
        scheme = QGuiApplication.styleHints().colorScheme()
    if scheme == Qt.ColorScheme.Unknown:
        # The platform does not say (older desktops, offscreen): its palette still tells a dark desktop apart.
        return DARK if QGuiApplication.palette().color(QPalette.ColorRole.Window).lightness() < 128 else LIGHT
    return DARK if scheme == Qt.ColorScheme.Dark else LIGHT


def build_qpalette(p: Palette) -> QPalette:
    """The QPalette for ``p``: what widgets the stylesheet does not touch (and ``palette(...)`` in QSS) draw with."""
    role = QPalette.ColorRole
    qp = QPalette()
    colours = {
        role.Window: p.window,
        role.WindowText: p.text,
        role.Base: p.surface,
        role.AlternateBase: p.bubble,
        role.Text: p.text,
        role.Button: p.surface,
        role.ButtonText: p.text,
        role.BrightText: p.on_accent,
        role.PlaceholderText: p.text_muted,
        role.Highlight: p.accent,
        role.HighlightedText: p.on_accent,
        role.Link: p.link,
        role.LinkVisited: p.link,
        role.ToolTipBase: p.surface,
        role.ToolTipText: p.text,
        role.Light: p.hover,
        role.Midlight: p.border,
        role.Mid: p.outline,
        role.Dark: p.outline,
        role.Shadow: "#000000",
        role.Accent: p.accent,
    }
    for colour_role, value in colours.items():
        qp.setColor(colour_role, QColor(value))
    for colour_role in (role.WindowText, role.Text, role.ButtonText, role.PlaceholderText):
        qp.setColor(QPalette.ColorGroup.Disabled, colour_role, QColor(p.text_disabled))
    return qp


def build_stylesheet(
    p: Palette,
    icon_files: dict[str, Path],
    on_accent_files: dict[str, Path],
    body_pt: float = 10.0,
    check_mark: Path | None = None,
) -> str:
    """The application's stylesheet for ``p``. ``icon_files``: each icon name's SVG in ``p.text`` (and
    ``on_accent_files`` in ``p.on_accent``, for the accent-filled Send button), from :func:`icons.write_recoloured`:
    a button with an ``iconName`` property gets that icon. ``body_pt``: the body font's size, which captions and
    headings scale from. ``check_mark``: the tick of a checked box, in ``p.on_accent`` (:func:`icons.write_check_mark`;
    None: a checked box is only filled)."""
    s, r = SPACING, RADII
    chevron = icon_files["chevron-down"].as_posix()  # the arrow of combo boxes and menu buttons
    tick = f' image: url("{check_mark.as_posix()}");' if check_mark is not None else ""
    caption, title, display = (TYPE.points(body_pt, k) for k in (TYPE.caption, TYPE.title, TYPE.display))
    rules = f"""
QMainWindow, QDialog {{ background: {p.window}; }}
QToolTip {{ background: {p.surface}; color: {p.text}; border: 1px solid {p.border}; padding: {s.xs}px; }}
QMenuBar {{ background: {p.window}; color: {p.text}; }}
QMenuBar::item {{ padding: {s.xs}px {s.sm}px; border-radius: {r.sm}px; }}
QMenuBar::item:selected {{ background: {p.hover}; }}
QMenu {{ background: {p.surface}; color: {p.text}; border: 1px solid {p.border}; border-radius: {r.md}px;
    padding: {s.xs}px; }}
QMenu::item {{ padding: 5px {s.xl}px 5px {s.sm}px; border-radius: {r.sm}px; }}
QMenu::item:selected {{ background: {p.hover}; color: {p.text}; }}
QMenu::item:disabled {{ color: {p.text_disabled}; }}
QMenu::icon {{ padding-left: {s.sm}px; }}
QMenu::separator {{ height: 1px; background: {p.border}; margin: {s.xs}px {s.sm}px; }}
QStatusBar {{ background: {p.window}; color: {p.text_muted}; border-top: 1px solid {p.border}; }}
QStatusBar QLabel {{ color: {p.text_muted}; }}
QSplitter::handle {{ background: {p.window}; }}
QSplitter::handle:horizontal {{ border-left: 1px solid {p.border}; }}

QPushButton {{ background: {p.surface}; color: {p.text}; border: 1px solid {p.outline}; border-radius: {r.md}px;
    padding: 5px {s.sm + 2}px; }}
QPushButton:hover {{ background: {p.hover}; }}
QPushButton:pressed {{ background: {p.border}; }}
QPushButton:disabled {{ color: {p.text_disabled}; border-color: {p.border}; }}
QPushButton:default, QPushButton[role="primary"] {{ background: {p.accent}; color: {p.on_accent};
    border-color: {p.accent}; }}
QPushButton:default:disabled, QPushButton[role="primary"]:disabled {{ background: {p.hover};
    color: {p.text_disabled}; border-color: {p.border}; }}
QPushButton:focus, QToolButton:focus {{ border-color: {p.accent}; }}
QToolButton {{ background: transparent; color: {p.text}; border: 1px solid transparent; border-radius: {r.sm}px;
    padding: 3px {s.sm}px; }}
QToolButton:hover {{ background: {p.hover}; }}
QToolButton:pressed, QToolButton:checked:hover {{ background: {p.border}; }}
QToolButton:disabled {{ color: {p.text_disabled}; }}
QToolButton[popupMode="1"] {{ padding-right: 18px; }}
QToolButton[popupMode="2"] {{ padding-right: 20px; }}
QToolButton::menu-button {{ border: none; width: 16px; }}
QToolButton::menu-arrow, QToolButton::menu-indicator {{ image: url("{chevron}"); width: 12px; height: 12px; }}
QToolButton::menu-indicator {{ subcontrol-origin: padding; subcontrol-position: center right; right: 4px; }}
/* A compact control in the composer's bar (Sampling): outlined like the effort box beside it, its chevron the same
   size as the box's and centred, with room between it, the text and the border. */
QToolButton[role="control"] {{ background: {p.surface}; border: 1px solid {p.outline}; border-radius: {r.md}px;
    padding: 3px {s.sm}px; padding-right: {s.sm + 12}px; }}
QToolButton[role="control"]:hover {{ background: {p.hover}; }}
QToolButton[role="control"]:focus {{ border-color: {p.accent}; }}
QToolButton[role="control"]::menu-indicator {{ subcontrol-origin: padding; subcontrol-position: center right;
    right: {s.sm}px; width: 12px; height: 12px; }}
/* An icon-only control in the composer's bar (Attach files): padded just enough for its hover fill. */
QToolButton[role="icon-control"] {{ padding: 3px {s.xs}px; }}

/* Check boxes and radio buttons drawn from the palette: Fusion outlines them in a darker shade of the window colour,
   which all but disappears on a dark window. A checked radio button is an accent ring, a checked box an accent
   square with its tick. */
QCheckBox::indicator, QRadioButton::indicator {{ width: 14px; height: 14px; border: 1px solid {p.outline};
    background: {p.surface}; }}
QCheckBox::indicator {{ border-radius: 3px; }}
QRadioButton::indicator {{ border-radius: 8px; }}
QCheckBox::indicator:hover, QRadioButton::indicator:hover {{ border-color: {p.accent}; }}
QCheckBox::indicator:checked {{ background: {p.accent}; border-color: {p.accent};{tick} }}
QRadioButton::indicator:checked {{ border: 5px solid {p.accent}; width: 6px; height: 6px; }}
QCheckBox::indicator:disabled, QRadioButton::indicator:disabled {{ border-color: {p.border}; background: {p.sunken}; }}

QLineEdit, QPlainTextEdit, QComboBox, QSpinBox, QDoubleSpinBox {{ background: {p.surface}; color: {p.text};
    border: 1px solid {p.outline}; border-radius: {r.md}px; selection-background-color: {p.accent};
    selection-color: {p.on_accent}; }}
QLineEdit, QPlainTextEdit {{ padding: {s.xs}px {s.sm}px; }}
QComboBox, QSpinBox, QDoubleSpinBox {{ padding: 3px {s.sm}px; }}
QLineEdit:focus, QPlainTextEdit:focus, QComboBox:focus {{ border-color: {p.accent}; }}
QComboBox {{ padding-right: 22px; }}
QComboBox::drop-down {{ border: none; width: 20px; subcontrol-origin: padding; subcontrol-position: center right; }}
QComboBox::down-arrow {{ image: url("{chevron}"); width: 12px; height: 12px; }}
QComboBox QAbstractItemView {{ background: {p.surface}; color: {p.text}; border: 1px solid {p.border};
    selection-background-color: {p.hover}; selection-color: {p.text}; }}
QListView, QTreeView, QListWidget {{ background: {p.window}; color: {p.text}; border: none; }}
QListView::item, QListWidget::item {{ padding: {s.xs}px {s.sm}px; border-radius: {r.sm}px; }}
QListView::item:hover, QListWidget::item:hover {{ background: {p.hover}; }}
QListView::item:selected, QListWidget::item:selected {{ background: {p.bubble}; color: {p.text}; }}
QProgressBar {{ background: {p.sunken}; border: 1px solid {p.border}; border-radius: {r.sm}px; color: {p.text};
    text-align: center; }}
QProgressBar::chunk {{ background: {p.accent}; border-radius: {r.sm}px; }}

QScrollBar:vertical {{ background: transparent; width: 10px; margin: 0; }}
QScrollBar:horizontal {{ background: transparent; height: 10px; margin: 0; }}
QScrollBar::handle {{ background: {p.scrollbar}; border-radius: 3px; margin: 2px; }}
QScrollBar::handle:vertical {{ min-height: 32px; }}
QScrollBar::handle:horizontal {{ min-width: 32px; }}
QScrollBar::add-line, QScrollBar::sub-line {{ width: 0; height: 0; }}
QScrollBar::add-page, QScrollBar::sub-page {{ background: none; }}

QFrame[role="user-bubble"] {{ background: {p.bubble}; border-radius: {r.lg}px; }}
QFrame[role="assistant-card"] {{ background: {p.surface}; border: 1px solid {p.border}; border-radius: {r.lg}px; }}
QFrame[role="reasoning"] {{ background: {p.sunken}; border: 1px solid {p.border}; border-radius: {r.md}px; }}
QLabel[role="badge"] {{ color: {p.text_muted}; border: 1px solid {p.outline}; border-radius: {r.badge}px;
    padding: 1px {s.sm}px; font-size: {caption}; }}
QLabel[role="caption"] {{ color: {p.text_muted}; font-size: {caption}; }}
QLabel[role="title"] {{ color: {p.text}; font-size: {title}; font-weight: 600; }}
QLabel[role="display"] {{ color: {p.text}; font-size: {display}; font-weight: 600; }}
QLabel[role="error"] {{ color: {p.danger}; }}
QToolButton[role="message-action"] {{ color: {p.text_muted}; padding: 2px {s.sm - 2}px; }}
QToolButton[role="message-action"]:hover {{ color: {p.text}; }}
/* An attached file (app/chat/attachment_chips.py): an outlined pill holding a file icon, the file's name and figures,
   and in the composer a small remove button. */
QFrame[role="attachment-chip"] {{ background: {p.surface}; border: 1px solid {p.outline}; border-radius: {r.md}px; }}
QToolButton[role="chip-icon"] {{ padding: 1px; border: none; }}
"""
    icon_rules = [
        f'*[iconName="{name}"] {{ qproperty-icon: url("{path.as_posix()}"); }}' for name, path in icon_files.items()
    ]
    # Send is the default button, drawn on the accent fill (a qproperty is set once, at polish, so the rule names
    # the icon rather than the :default state).
    icon_rules += [
        f'QPushButton[iconName="{name}"] {{ qproperty-icon: url("{on_accent_files[name].as_posix()}"); }}'
        for name in ON_ACCENT_ICONS
    ]
    return rules + "\n".join(icon_rules) + "\n"


@dataclass(frozen=True)
class AppliedTheme:
    """What :func:`apply_theme` set: the mode asked for and the palette it resolved to."""

    mode: ThemeMode
    palette: Palette


# The theme applied last and the stylesheet it set (see current_theme).
_last: list[tuple[AppliedTheme, str]] = []


def apply_theme(app: QApplication | None, mode: ThemeMode | str) -> AppliedTheme:
    """Give the whole application ``mode``'s look (a ThemeMode or its value: "system", "light", "dark"), live: the
    Fusion style (the one style that follows a palette on every platform), the QPalette and the stylesheet.
    Widgets restyle themselves; nothing restarts. The screenshot tool calls this too (app/shell/screenshot.py)."""
    app = app or _application()
    mode = mode if isinstance(mode, ThemeMode) else ThemeMode.parse(mode)
    palette = palette_for(mode)
    # Only while no stylesheet is set: with one, app.style() is Qt's stylesheet proxy (its name() is empty), and
    # replacing the style under it crashes Qt once widgets with their own stylesheets exist.
    if not app.styleSheet() and app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    qpalette = build_qpalette(palette)
    if app.palette() != qpalette:
        app.setPalette(qpalette)
    sheet = build_stylesheet(
        palette,
        icons.write_recoloured(palette.text, palette.name),
        icons.write_recoloured(palette.on_accent, f"{palette.name}-on-accent"),
        _body_points(app),
        icons.write_check_mark(palette.on_accent, palette.name),
    )
    if app.styleSheet() != sheet:  # re-polishing every widget is not free: skip it when nothing changed
        app.setStyleSheet(sheet)
    icons.refresh_action_icons(app)
    logger.debug("theme %s applied (%s palette)", mode.value, palette.name)
    applied = AppliedTheme(mode, palette)
    _last[:] = [(applied, sheet)]
    return applied


def current_theme(app: QApplication | None = None) -> AppliedTheme | None:
    """The theme the application wears now, if :func:`apply_theme` gave it (None once something else replaced
    its stylesheet or palette, e.g. the screenshot tool restoring the look it found)."""
    app = app or _application()
    if not _last or app.styleSheet() != _last[0][1]:
        return None
    applied = _last[0][0]
    window = app.palette().color(QPalette.ColorRole.Window)
    return applied if window == QColor(applied.palette.window) else None


def _body_points(app: QApplication) -> float:
    size = app.font().pointSizeF()
    return size if size > 0 else 10.0  # a font sized in pixels has no point size


def _application() -> QApplication:
    app = QApplication.instance()
    assert isinstance(app, QApplication), "the theme needs a QApplication"
    return app
