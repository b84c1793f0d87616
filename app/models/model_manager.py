"""The model manager: the installed models in a table, with verify again, delete, open folder, import and load.

Verification and import read whole files or checkpoint headers, so they run on a :class:`WorkerRunner`; the window
stays responsive and shows progress.
"""

from __future__ import annotations

import asyncio
import html
import logging
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gpt_oss_desktop.app.desktop.crash import write_crash_log
from gpt_oss_desktop.app.downloads import DownloadError, InstalledModel, human_bytes
from gpt_oss_desktop.app.downloads.manage import delete_model, import_folder, verify_installed
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary, WorkerRunner

logger = logging.getLogger(__name__)

T = TypeVar("T")
COLUMNS = ("Name", "Layout", "Size", "Verified", "Path")
Confirm = Callable[[str, str], bool]
EMPTY_TEXT = (
    "<b>No models installed yet.</b><br>Download gpt-oss-20b (about 13 GB) to chat with a real model, or open a "
    "folder that already holds a gpt-oss checkpoint."
)


def verified_text(model: InstalledModel) -> str:
    if model.check == "failed":
        return "✘ failed its last check"
    if model.verified:
        return "✔ SHA-256"
    return "structure only (no checksums)"


class ModelManager(QDialog):
    """A window over the installed models (modeless).

    Signals:
        load_requested(str): the user asked to load the model at this path.
        download_requested(): the user asked to download a model (the download wizard).

    Args:
        loaded_model: the name of the model loaded in the window now, if any (shown above the list: the built-in
            demo is never in it).
        open_folder, confirm, choose_folder: injectable for tests (default: the desktop's file manager, a
            message box, a folder dialog).
    """

    load_requested = Signal(str)
    download_requested = Signal()

    def __init__(
        self,
        library: ModelLibrary,
        parent: QWidget | None = None,
        *,
        loaded_model: Callable[[], str | None] | None = None,
        open_folder: Callable[[Path], None] | None = None,
        confirm: Confirm | None = None,
        choose_folder: Callable[[], Path | None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Installed models")
        self.resize(860, 380)
        self.library = library
        self.loaded_model = loaded_model or (lambda: None)
        self.runner = WorkerRunner(self, name="gpt-oss-models")
        self.open_folder = open_folder or _open_in_file_manager
        self.confirm: Confirm = confirm or self._ask
        self.choose_folder = choose_folder or self._choose_folder
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Installed models")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        # What is loaded now: the demo is built in, so the list of installed models never shows it.
        self.loaded_note = QLabel(self)
        self.loaded_note.setWordWrap(True)
        self.loaded_note.setAccessibleName("Loaded model")
        self.loaded_note.hide()
        # With nothing installed the table would be an empty grid: say what to do instead.
        self.empty_text = QLabel(EMPTY_TEXT, self)
        self.empty_text.setWordWrap(True)
        self.empty_text.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_text.setAccessibleName("No models installed")
        self.empty_download_button = QPushButton("Download a model…", self)
        self.empty_download_button.clicked.connect(self.download_requested)
        self.empty_open_button = QPushButton("Open a model folder…", self)
        self.empty_open_button.setToolTip("Add a folder that holds a gpt-oss checkpoint to this list")
        self.empty_open_button.clicked.connect(self._import_clicked)
        empty_buttons = QHBoxLayout()
        empty_buttons.addStretch(1)
        empty_buttons.addWidget(self.empty_download_button)
        empty_buttons.addWidget(self.empty_open_button)
        empty_buttons.addStretch(1)
        self.empty_page = QWidget(self)
        empty_layout = QVBoxLayout(self.empty_page)
        empty_layout.addStretch(1)
        empty_layout.addWidget(self.empty_text)
        empty_layout.addLayout(empty_buttons)
        empty_layout.addStretch(1)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(self.table)
        self.pages.addWidget(self.empty_page)
        self.load_button = QPushButton("Load", self)
        self.verify_button = QPushButton("Verify again", self)
        self.delete_button = QPushButton("Delete…", self)
        self.open_button = QPushButton("Open folder", self)
        self.import_button = QPushButton("Import a folder…", self)
        self.progress = QProgressBar(self)
        self.progress.setAccessibleName("Verification progress")
        self.progress.hide()
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Model manager status")
        self.close_buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.close_buttons.rejected.connect(self.close)
        buttons = QHBoxLayout()
        for button in (self.load_button, self.verify_button, self.delete_button, self.open_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.loaded_note)
        layout.addWidget(self.pages, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.close_buttons)
        self._task: asyncio.Future[object] | None = None
        self._total = 0
        self._done = 0

        self.load_button.clicked.connect(self._load)
        self.verify_button.clicked.connect(lambda: self._start(self.verify_selected()))
        self.delete_button.clicked.connect(lambda: self._start(self.delete_selected()))
        self.open_button.clicked.connect(self._open)
        self.import_button.clicked.connect(self._import_clicked)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.cellDoubleClicked.connect(lambda _row, _col: self._load())
        library.changed.connect(self.refresh)
        self.refresh()
        if library.registry.load_warning:
            self.status.setText(library.registry.load_warning)

    # -- table ------------------------------------------------------------------------------------------------

    def refresh(self) -> None:
        selected = self.selected()
        models = self.library.models()
        self.table.setRowCount(len(models))
        for row, model in enumerate(models):
            cells = (
                model.name,
                model.layout,
                human_bytes(model.size_bytes),
                verified_text(model),
                model.path,
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(text)
                self.table.setItem(row, column, item)
            if selected is not None and model.path == selected.path:
                self.table.selectRow(row)
        if self.selected() is None and models:
            self.table.selectRow(0)
        self.table.resizeColumnsToContents()
        self.pages.setCurrentWidget(self.table if models else self.empty_page)
        # The empty page has its own two offers; buttons for a selected row mean nothing without rows.
        for button in (self.load_button, self.verify_button, self.delete_button, self.open_button, self.import_button):
            button.setVisible(bool(models))
        self._update_buttons()
        self.show_loaded_model()

    @property
    def empty(self) -> bool:
        """No installed model: the manager shows what to do instead of an empty table."""
        return self.pages.currentWidget() is self.empty_page

    def show_loaded_model(self) -> None:
        """Name the model loaded in the window now (the demo is built in, never installed)."""
        name = self.loaded_model()
        if not name:
            self.loaded_note.hide()
            return
        built_in = ": built into the app, nothing to install" if name.endswith("(toy)") else ""
        self.loaded_note.setText(f"Loaded now: <b>{html.escape(name)}</b>{built_in}.")
        self.loaded_note.show()

    def showEvent(self, event: QShowEvent) -> None:
        self.show_loaded_model()  # a model may have loaded since the manager was last open
        super().showEvent(event)

    def selected(self) -> InstalledModel | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        item = self.table.item(rows[0].row(), len(COLUMNS) - 1)
        return self.library.registry.find(item.text()) if item is not None else None

    def _update_buttons(self) -> None:
        has = self.selected() is not None
        idle = not self.runner.busy
        for button in (self.load_button, self.verify_button, self.delete_button, self.open_button):
            button.setEnabled(has and idle)
        self.import_button.setEnabled(idle)
        self.empty_open_button.setEnabled(idle)

    # -- actions ----------------------------------------------------------------------------------------------

    def _start(self, coro: Coroutine[Any, Any, object]) -> None:
        self._task = asyncio.ensure_future(coro)
        self._task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[object]) -> None:
        # The steps report their own errors; this last net means none is left "never retrieved" until exit.
        if not task.cancelled() and (exc := task.exception()) is not None and isinstance(exc, Exception):
            self.status.setText(f"<b>Something went wrong.</b> {_unexpected('task', exc)}")
            self._update_buttons_busy(False)

    def _load(self) -> None:
        model = self.selected()
        if model is not None:
            self.load_requested.emit(model.path)

    def _open(self) -> None:
        model = self.selected()
        if model is not None:
            self.open_folder(Path(model.path))

    async def verify_selected(self) -> InstalledModel | None:
        """Hash the selected model's files again against its recorded checksums, then the engine's validator."""
        model = self.selected()
        if model is None:
            return None
        self._total = sum(f.size for f in model.files if f.sha256 or f.git_sha1)
        self._done = 0
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText(f"Checking {model.name}…")
        loop = asyncio.get_running_loop()

        def on_bytes(n: int) -> None:  # worker thread
            loop.call_soon_threadsafe(self._advance, n)

        registry = self.library.registry
        try:
            checked = await self._busy_reporting(
                lambda: verify_installed(model, registry, on_bytes), "verify", f"{model.name} could not be checked."
            )
        finally:
            self.progress.hide()
            self.library.notify()
        if checked is None:
            return None
        how = "every file matches its SHA-256" if checked.verified else "the checkpoint structure is valid"
        self.status.setText(f"{checked.name}: {how}.")
        return checked

    def _advance(self, n: int) -> None:
        self._done += n
        if self._total:
            self.progress.setValue(round(1000 * self._done / self._total))

    async def delete_selected(self) -> bool:
        model = self.selected()
        if model is None:
            return False
        if model.source == "import":
            question = f"Remove {model.name} from the list? Its folder is not touched:\n{model.path}"
        else:
            question = f"Delete {model.name} ({human_bytes(model.size_bytes)}) from disk?\n{model.path}"
        if not self.confirm("Delete the model?" if model.source != "import" else "Remove the model?", question):
            return False
        registry = self.library.registry
        freed = await self._busy_reporting(
            lambda: delete_model(model, registry), "delete", f"{model.name} was not deleted."
        )
        if freed is None:
            return False
        self.library.notify()
        self.status.setText(f"Deleted {model.name}" + (f": {human_bytes(freed)} freed." if freed else "."))
        return True

    def _import_clicked(self) -> None:
        folder = self.choose_folder()
        if folder is not None:
            self._start(self.import_from(folder))

    async def import_from(self, folder: Path) -> InstalledModel | None:
        """Register a checkpoint folder the engine's validator accepts."""
        self.status.setText(f"Checking {folder}…")
        registry = self.library.registry
        model = await self._busy_reporting(
            lambda: import_folder(folder, registry),
            "import",
            "Not imported.",
            known=lambda error: f"<b>Not imported.</b> {error}",
        )
        if model is None:
            return None
        self.library.notify()
        self.status.setText(f"Imported {model.name} ({model.layout} layout, {human_bytes(model.size_bytes)}).")
        return model

    async def _busy_reporting(
        self,
        fn: Callable[[], T],
        action: str,
        failed: str,
        known: Callable[[DownloadError], str] = lambda error: f"<b>{error}</b><br>{error.advice}",
    ) -> T | None:
        """:meth:`_busy`, with a failure shown in the status line (``known`` words a download error, ``failed`` heads
        any other) and given back as None: a bug still ends "Checking …" with the error, never leaves it to the loop."""
        try:
            return await self._busy(fn)
        except DownloadError as error:
            self.status.setText(known(error))
        except Exception:
            self.status.setText(f"<b>{failed}</b> {_unexpected(action)}")
        return None

    async def _busy(self, fn: Callable[[], T]) -> T:
        self._update_buttons_busy(True)
        try:
            return await self.runner.call(fn)
        finally:
            self._update_buttons_busy(False)

    def _update_buttons_busy(self, busy: bool) -> None:
        for button in (
            self.load_button,
            self.verify_button,
            self.delete_button,
            self.open_button,
            self.import_button,
        ):
            button.setEnabled(not busy)
        if not busy:
            self._update_buttons()

    # -- defaults ---------------------------------------------------------------------------------------------

    def _ask(self, title: str, text: str) -> bool:
        return QMessageBox.question(self, title, text) == QMessageBox.StandardButton.Yes

    def _choose_folder(self) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a gpt-oss checkpoint folder")
        return Path(folder) if folder else None


def _unexpected(action: str, exc: BaseException | None = None) -> str:
    """Describe ``exc`` (default: the exception being handled) rich-text safe, and keep its traceback in a crash log."""
    if exc is None:
        exc = sys.exc_info()[1]
    assert exc is not None
    exc_info = (type(exc), exc, exc.__traceback__)
    summary = html.escape(f"Unexpected {type(exc).__name__}: {exc}")
    try:
        path = write_crash_log(exc_info, f"model manager: {action}")
    except OSError as log_error:
        logger.error("model manager: %s failed", action, exc_info=exc_info)
        return f"{summary} (no crash log written: {html.escape(str(log_error))})"
    logger.error("model manager: %s failed; details in %s", action, path)
    return f"{summary}<br>Details are in {html.escape(str(path))}"


def _open_in_file_manager(path: Path) -> None:
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        logger.warning("could not open %s in a file manager", path)
