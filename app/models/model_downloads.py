"""The window's model downloads: menu entries, the installed-models submenu, the wizard, the manager, and the
offer to resume a download the last session left unfinished. Kept out of main_window.py, which only wires it in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QMenu, QMessageBox, QPushButton, QWidget

from gpt_oss_desktop.app.downloads import HubSettings, ModelRegistry, PendingDownload, human_bytes
from gpt_oss_desktop.app.downloads.download_wizard import DownloadWizard
from gpt_oss_desktop.app.downloads.errors import RegistryError
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary
from gpt_oss_desktop.app.models.model_manager import ModelManager, verified_text

logger = logging.getLogger(__name__)


def open_default_library(parent: QObject | None = None) -> ModelLibrary | None:
    """The installed-models list in the user data folder, or None (downloads still work, nothing is listed)."""
    try:
        return ModelLibrary(ModelRegistry(), parent)
    except RegistryError as exc:
        logger.error("installed models unavailable: %s", exc)
        return None


class ModelDownloads(QObject):
    """Owns the wizard and manager windows of one main window.

    Args:
        window: their parent.
        load: loads a model folder in the window (``MainWindow.load_model``).
        library: the installed-models list; None opens the default one on first use.
        hub: Hub settings for the wizard (default: from the environment).
        wizard_options: extra keyword arguments for :class:`DownloadWizard` (tests inject probes and retries).
        loaded_model: the name of the model loaded in the window now, if any (the manager names it).
    """

    def __init__(
        self,
        window: QWidget,
        load: Callable[[str], object],
        library: ModelLibrary | None = None,
        *,
        hub: HubSettings | None = None,
        wizard_options: dict[str, Any] | None = None,
        loaded_model: Callable[[], str | None] | None = None,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.load = load
        self._library = library
        self.hub = hub
        self.wizard_options = dict(wizard_options or {})
        self.loaded_model = loaded_model
        self.wizard: DownloadWizard | None = None
        self.manager: ModelManager | None = None
        self.resume_prompt: QMessageBox | None = None
        self.installed_menu: QMenu | None = None
        if library is not None:
            library.changed.connect(self.rebuild_installed_menu)

    @property
    def library(self) -> ModelLibrary | None:
        if self._library is None:
            self._library = open_default_library(self)
            if self._library is not None:
                self._library.changed.connect(self.rebuild_installed_menu)
        return self._library

    # -- menu -------------------------------------------------------------------------------------------------

    def add_to_menu(self, menu: QMenu) -> None:
        menu.addSeparator()
        self.download_action = QAction("&Download a model…", self.window)
        self.download_action.triggered.connect(lambda: self.open_wizard())
        menu.addAction(self.download_action)
        self.manage_action = QAction("&Manage models…", self.window)
        self.manage_action.triggered.connect(lambda: self.open_manager())
        menu.addAction(self.manage_action)
        self.installed_menu = menu.addMenu("&Installed models")
        self.installed_menu.aboutToShow.connect(self.rebuild_installed_menu)
        self.rebuild_installed_menu()

    def rebuild_installed_menu(self) -> None:
        menu = self.installed_menu
        if menu is None:
            return
        menu.clear()
        # Reading the list only when a library was given or already opened keeps tests off the real data folder.
        models = self._library.models() if self._library is not None else []
        if not models:
            empty = menu.addAction("No models installed yet")
            empty.setEnabled(False)
            return
        for model in models:
            action = menu.addAction(f"{model.name}  ({human_bytes(model.size_bytes)}, {verified_text(model)})")
            action.setToolTip(model.path)
            action.setStatusTip(model.path)
            action.triggered.connect(partial(self.load, model.path))

    # -- windows ----------------------------------------------------------------------------------------------

    def open_wizard(self, resume: PendingDownload | None = None) -> DownloadWizard | None:
        library = self.library
        if library is None:
            QMessageBox.warning(self.window, "Download a model", "The list of installed models cannot be opened.")
            return None
        if self.wizard is not None and self.wizard.isVisible():
            self.wizard.raise_()
            self.wizard.activateWindow()
            return self.wizard
        if self.wizard is not None and not self.wizard.runner.busy:
            self.wizard.deleteLater()
        wizard = DownloadWizard(library, self.hub, self.window, resume=resume, **self.wizard_options)
        wizard.finished.connect(partial(self._wizard_finished, wizard))
        self.wizard = wizard
        wizard.show()
        return wizard

    def _wizard_finished(self, wizard: DownloadWizard, result: int) -> None:
        installed = wizard.installed_model
        if result == QDialog.DialogCode.Accepted and installed is not None and wizard.load_now:
            self.load(installed.path)

    def open_manager(self) -> ModelManager | None:
        library = self.library
        if library is None:
            QMessageBox.warning(self.window, "Manage models", "The list of installed models cannot be opened.")
            return None
        if self.manager is None:
            self.manager = ModelManager(library, self.window, loaded_model=self.loaded_model)
            self.manager.load_requested.connect(self.load)
            self.manager.download_requested.connect(lambda: self.open_wizard())
        if library.registry.load_warning:
            self.manager.status.setText(library.registry.load_warning)
        self.manager.show()
        self.manager.raise_()
        return self.manager

    # -- resume after a restart -------------------------------------------------------------------------------

    def offer_resume(self) -> QMessageBox | None:
        """If the last session left a download unfinished, ask (without blocking the window) whether to resume."""
        library = self._library
        pending = library.registry.pending if library is not None else None
        if pending is None:
            return None
        box = QMessageBox(self.window)
        box.setWindowTitle("Resume the download?")
        box.setIcon(QMessageBox.Icon.Question)
        box.setText(f"The download of {pending.model_key} did not finish.")
        box.setInformativeText(f"The part already downloaded is kept in {pending.location}.")
        self.resume_button: QPushButton = box.addButton("Resume", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Not now", QMessageBox.ButtonRole.RejectRole)
        self.forget_button: QPushButton = box.addButton("Forget it", QMessageBox.ButtonRole.DestructiveRole)
        box.setModal(False)
        box.buttonClicked.connect(partial(self._resume_answered, pending))
        box.show()
        self.resume_prompt = box
        return box

    def _resume_answered(self, pending: PendingDownload, button: object) -> None:
        if button is self.resume_button:
            self.open_wizard(resume=pending)
        elif button is self.forget_button and self._library is not None:
            # The partial files stay: the wizard's location page offers to resume or delete them.
            self._library.registry.set_pending(None)

    def shutdown(self) -> None:
        """The window is closing: a running download pauses and stays pending, to be offered at the next start."""
        if self.wizard is not None:
            self.wizard.shutdown()
