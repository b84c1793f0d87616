"""View > Theme (System, Light, Dark): remembered in the settings, applied live, and the window's icons.

:func:`attach` is the main window's one call: it applies the saved theme to the application, adds the menu, gives
the window's actions and buttons their icons, and follows the desktop's light/dark switch while the choice is
System.
"""

from __future__ import annotations

import logging
from typing import Final

from PySide6.QtCore import QObject, QSettings, Qt
from PySide6.QtGui import QAction, QActionGroup, QGuiApplication
from PySide6.QtWidgets import QMainWindow, QMenu, QToolButton, QWidget

from gpt_oss_desktop.app.settings import THEME_KEY
from gpt_oss_desktop.app.shell import icons
from gpt_oss_desktop.app.shell.theme import ThemeMode, apply_theme, current_theme

logger = logging.getLogger(__name__)

_LABELS: Final = {
    ThemeMode.SYSTEM: ("&System", "monitor", "Follow the desktop's light or dark setting"),
    ThemeMode.LIGHT: ("&Light", "sun", "Light background, dark text"),
    ThemeMode.DARK: ("&Dark", "moon", "Dark background, light text"),
}
# The window's actions and buttons that get an icon, by attribute name (main_window.py, composer.py,
# model_downloads.py build them; naming them here keeps the icon choices in one place).
WINDOW_ACTION_ICONS: Final = {
    "new_chat_action": "square-pen",
    "send_action": "send",
    "stop_action": "square",
    "regenerate_action": "refresh-cw",
    "edit_last_action": "pencil",
    "instructions_action": "settings",
    "compare_action": "columns-3",
}
MODEL_ACTION_ICONS: Final = {"download_action": "download", "manage_action": "box"}
COMPOSER_BUTTON_ICONS: Final = {"send_button": "send", "stop_button": "square", "settings_button": "sliders-horizontal"}
# Menu entries the window builds without keeping a reference, by their text.
MENU_TEXT_ICONS: Final = {"Load the &demo model": "box", "&Open a model folder…": "folder-open"}


class ThemeMenu(QObject):
    """The Theme submenu and the theme it keeps applied.

    Signals: none; read :attr:`applied` for the palette in use.
    """

    def __init__(self, window: QMainWindow, settings: QSettings) -> None:
        super().__init__(window)
        self._settings = settings
        saved = settings.value(THEME_KEY)
        worn = current_theme()
        if saved is None and worn is not None:
            # Nothing chosen yet and the application already wears a theme (another window's, or the one the
            # screenshot tool picked): keep it rather than flip the look.
            self.mode, self.applied = worn.mode, worn
        else:
            self.mode = ThemeMode.parse(saved)
            self.applied = apply_theme(None, self.mode)

        view = _find_menu(window, "&View") or window.menuBar().addMenu("&View")
        self.menu = QMenu("&Theme", view)
        view.addMenu(self.menu)
        group = QActionGroup(self)
        group.setExclusive(True)
        self.actions: dict[ThemeMode, QAction] = {}
        for mode, (label, icon_name, tip) in _LABELS.items():
            action = QAction(label, self.menu)
            action.setCheckable(True)
            action.setChecked(mode is self.mode)
            action.setStatusTip(tip)
            action.setToolTip(tip)
            icons.set_icon(action, icon_name)
            action.triggered.connect(lambda _=False, m=mode: self.set_mode(m))
            group.addAction(action)
            self.menu.addAction(action)
            self.actions[mode] = action
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)

    def set_mode(self, mode: ThemeMode) -> None:
        """Use ``mode`` from now on (and at the next start); the window restyles at once."""
        self.mode = mode
        self._settings.setValue(THEME_KEY, mode.value)
        self.actions[mode].setChecked(True)
        self.applied = apply_theme(None, mode)

    def _on_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if self.mode is ThemeMode.SYSTEM:
            self.applied = apply_theme(None, self.mode)


def attach(window: QMainWindow, settings: QSettings) -> ThemeMenu:
    """Apply the saved theme, add View > Theme to ``window`` and give its actions and buttons their icons."""
    menu = ThemeMenu(window, settings)
    decorate(window)
    return menu


def decorate(window: QMainWindow) -> None:
    """Name the icons of the window's main actions and buttons (the theme draws them in its colours)."""
    for attribute, name in WINDOW_ACTION_ICONS.items():
        if isinstance(action := getattr(window, attribute, None), QAction):
            icons.set_icon(action, name)
    downloads = getattr(window, "model_downloads", None)
    for attribute, name in MODEL_ACTION_ICONS.items():
        if isinstance(action := getattr(downloads, attribute, None), QAction):
            icons.set_icon(action, name)
    for action in window.menuBar().findChildren(QAction) + window.findChildren(QAction):
        if (text_icon := MENU_TEXT_ICONS.get(action.text())) is not None:
            icons.set_icon(action, text_icon)
    composer = getattr(window, "composer", None)
    for attribute, name in COMPOSER_BUTTON_ICONS.items():
        if isinstance(button := getattr(composer, attribute, None), QWidget):
            button.setProperty(icons.ICON_PROPERTY, name)
            if isinstance(button, QToolButton):  # a tool button shows only its icon by default: keep its words
                button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            _repolish(button)


def _find_menu(window: QMainWindow, title: str) -> QMenu | None:
    for action in window.menuBar().actions():
        if (menu := action.menu()) is not None and action.text() == title and isinstance(menu, QMenu):
            return menu
    return None


def _repolish(widget: QWidget) -> None:
    """A property the stylesheet matches changed after the widget was polished: match again."""
    style = widget.style()
    style.unpolish(widget)
    style.polish(widget)
