"""Help, the menu bar's last menu: Keyboard shortcuts… (app/shell/shortcuts_dialog.py), Open data folder, Open log
file, About gpt-oss desktop (app/shell/about_dialog.py).

Desktop conventions put Help last, so menus added after it go in front of it: :func:`add_menu`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from PySide6.QtCore import QObject, Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import QDialog, QMainWindow, QMenu

from gpt_oss_desktop.app.backends.kernel_preparation import KernelPreparation
from gpt_oss_desktop.app.desktop.crash import app_log_path
from gpt_oss_desktop.app.shell import icons, window_menus
from gpt_oss_desktop.app.shell.about_dialog import AboutDialog, current_details
from gpt_oss_desktop.app.shell.shortcuts_dialog import ShortcutsDialog, window_shortcuts
from gpt_oss_desktop.engine.paths import user_data_dir

if TYPE_CHECKING:  # the window builds this menu
    from gpt_oss_desktop.app.shell.main_window import MainWindow

logger = logging.getLogger(__name__)

HELP_TITLE: Final = "&Help"
_MENU_NAME: Final = "helpMenu"  # its object name, how add_menu finds it
_NOTICE_MS: Final = 8000
DialogT = TypeVar("DialogT", bound=QDialog)


def add_menu(window: QMainWindow, title: str) -> QMenu:
    """A new menu of ``window``'s menu bar, in front of Help when there is one."""
    bar = window.menuBar()
    menu = QMenu(title, bar)
    help_menu = bar.findChild(QMenu, _MENU_NAME)
    if help_menu is None:
        bar.addMenu(menu)
    else:
        bar.insertMenu(help_menu.menuAction(), menu)
    return menu


class HelpMenu(QObject):
    """The Help menu's actions and what they open.

    The dialogs are built each time they open, so they show the window's shortcuts and the kernels' state as they
    are then.
    """

    def __init__(self, window: MainWindow, kernels: KernelPreparation | None = None) -> None:
        super().__init__(window)
        self._window = window
        self._kernels = kernels
        self._open_dialogs: dict[type[QDialog], QDialog] = {}  # one of each kind at a time
        self.menu = window.menuBar().addMenu(HELP_TITLE)
        self.menu.setObjectName(_MENU_NAME)
        self.shortcuts_action = window_menus.add_action(
            window,
            self.menu,
            "&Keyboard shortcuts…",
            self.show_shortcuts,
            (QKeySequence(QKeySequence.StandardKey.HelpContents), QKeySequence("Ctrl+/")),
        )
        self.menu.addSeparator()
        self.data_folder_action = self._add("Open &data folder", self.open_data_folder, "folder-open")
        self.data_folder_action.setStatusTip("Chats, settings and logs live here")
        self.log_action = self._add("Open &log file", self.open_log_file, "file-text")
        self.log_action.setStatusTip("What the app logged, with the details of any error")
        self.menu.addSeparator()
        self.about_action = self._add("&About gpt-oss desktop", self.show_about)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)  # macOS moves it to the application menu

    def show_shortcuts(self) -> ShortcutsDialog:
        """Open the shortcuts list (non-modal: it can stay open beside the window). Returns it."""
        dialog = ShortcutsDialog(window_shortcuts(self._window, self._window.composer.prompt), self._window)
        return self._show(dialog)

    def show_about(self) -> AboutDialog:
        """Open the About box. Returns it."""
        kernels = self._kernels
        details = current_details(
            kernels.status if kernels is not None else None,
            kernels_building=kernels is not None and kernels.is_building,
        )
        return self._show(AboutDialog(details, self._window))

    def open_data_folder(self) -> bool:
        """Show the data folder in the file manager; False (said in the status bar) when it cannot be."""
        folder = user_data_dir()
        if not folder.is_dir():
            return self._notice(f"There is no data folder yet ({folder}): nothing has been saved")
        return self._open(QUrl.fromLocalFile(str(folder)), str(folder))

    def open_log_file(self) -> bool:
        """Open the app's log in the desktop's text viewer; False (said in the status bar) when it cannot be."""
        log = app_log_path()
        if not log.is_file():
            return self._notice(f"There is no log file yet ({log}): nothing has been logged")
        return self._open(QUrl.fromLocalFile(str(log)), str(log))

    def _add(self, text: str, slot: Callable[[], object], icon: str | None = None) -> QAction:
        action = QAction(text, self._window)
        action.triggered.connect(slot)
        if icon is not None:
            icons.set_icon(action, icon)
        self.menu.addAction(action)
        return action

    def _show(self, dialog: DialogT) -> DialogT:
        """Show ``dialog`` beside the window (not modal), in place of the one of its kind opened before."""
        previous = self._open_dialogs.pop(type(dialog), None)
        if previous is not None:
            previous.close()
        self._open_dialogs[type(dialog)] = dialog
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(lambda _result: self._forget(dialog))
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        return dialog

    def _forget(self, dialog: QDialog) -> None:
        if self._open_dialogs.get(type(dialog)) is dialog:
            del self._open_dialogs[type(dialog)]

    def _open(self, url: QUrl, shown: str) -> bool:
        if QDesktopServices.openUrl(url):
            return True
        logger.warning("the desktop could not open %s", shown)
        return self._notice(f"Could not open {shown}")

    def _notice(self, text: str) -> bool:
        self._window.statusBar().showMessage(text, _NOTICE_MS)
        return False


def attach(window: MainWindow, kernels: KernelPreparation | None = None) -> HelpMenu:
    """Add Help to ``window``'s menu bar (last: build it after the other menus; later ones use :func:`add_menu`)."""
    return HelpMenu(window, kernels)
