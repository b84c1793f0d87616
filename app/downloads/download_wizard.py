"""The model download wizard: choose a model, choose where, download, verify, done.

Pages, in order: :class:`ModelPage` (size, memory and a verdict for this machine per model), :class:`LocationPage`
(the Hugging Face cache or a folder; detects a complete or partial copy there and refuses a disk that is too
small), :class:`DownloadPage` (file and total bars, speed, ETA, Pause/Resume, automatic retry, a token prompt on
401/403), :class:`VerifyPage` (SHA-256 against the Hub's record, then registration), :class:`DonePage` ("load it
now"). A complete copy skips the download page. The wizard is modeless: the window stays usable while it works,
and every blocking step runs on its :class:`~app.downloads.model_library.WorkerRunner`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, Final

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from gpt_oss_desktop.app.downloads import (
    CATALOG,
    CatalogModel,
    Destination,
    DownloadError,
    DownloadEvent,
    HubSettings,
    InstalledModel,
    LocalCopy,
    MachineInfo,
    MachineProbe,
    ModelDownload,
    PendingDownload,
    Progress,
    Refetching,
    Retrying,
    RetryPolicy,
    StageChanged,
    StorageKind,
    TransferStopped,
    assess,
    human_bytes,
    make_destination,
)
from gpt_oss_desktop.app.downloads.errors import AuthRequiredError
from gpt_oss_desktop.app.downloads.hardware import disk_needed, existing_parent
from gpt_oss_desktop.app.downloads.model_library import ModelLibrary, WorkerRunner
from gpt_oss_desktop.app.downloads.progress import MIN_EVENT_INTERVAL

logger = logging.getLogger(__name__)

PAGE_MODEL, PAGE_LOCATION, PAGE_DOWNLOAD, PAGE_VERIFY, PAGE_DONE = range(5)
_BAR_SCALE: Final = 1000  # QProgressBar holds an int: bars show per-mille, labels the real numbers
Confirm = Callable[[str, str], bool]


def default_folder(model: CatalogModel) -> Path:
    return Path.home() / "models" / model.key


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _fraction(done: int, total: int) -> int:
    return round(_BAR_SCALE * done / total) if total > 0 else 0


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _error_html(error: DownloadError) -> str:
    advice = f"<br>{_escape(error.advice)}" if error.advice else ""
    return f"<b>{_escape(str(error))}</b>{advice}"


def _status_label(parent: QWidget, name: str) -> QLabel:
    """A wrapping status line whose text can be selected (and so copied into a bug report)."""
    label = QLabel(parent)
    label.setWordWrap(True)
    label.setAccessibleName(name)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class DownloadWizard(QWizard):
    """Gets a gpt-oss model onto disk and into the installed list.

    Signals:
        installed(InstalledModel): an :class:`~app.downloads.InstalledModel`, once it is verified and registered.

    Args:
        library: the installed-models list to add to.
        hub: endpoint, token, cache and offline mode (default: from the environment).
        catalog, probe, retry, event_interval: injectable for tests.
        resume: a pending download to continue: the wizard opens on the download page.
        confirm: asks a yes/no question (default: a message box).
    """

    installed = Signal(InstalledModel)

    def __init__(
        self,
        library: ModelLibrary,
        hub: HubSettings | None = None,
        parent: QWidget | None = None,
        *,
        catalog: tuple[CatalogModel, ...] = CATALOG,
        probe: MachineProbe | None = None,
        retry: RetryPolicy | None = None,
        resume: PendingDownload | None = None,
        confirm: Confirm | None = None,
        event_interval: float = MIN_EVENT_INTERVAL,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Download a model")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage)
        self.setOption(QWizard.WizardOption.NoCancelButtonOnLastPage)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.resize(680, 520)
        self.library = library
        self.hub = hub if hub is not None else HubSettings.from_environment()
        self.catalog = catalog
        self.probe = probe if probe is not None else MachineProbe()
        self.retry = retry
        self.event_interval = event_interval
        self.confirm: Confirm = confirm if confirm is not None else self._ask
        self.runner = WorkerRunner(self)
        self.model: CatalogModel = catalog[0]
        self.storage = StorageKind.HF_CACHE
        self.folder: Path = default_folder(self.model)
        self.job: ModelDownload | None = None
        self.local_copy: LocalCopy | None = None
        self.installed_model: InstalledModel | None = None
        self._shutting_down = False

        self.model_page = ModelPage(self)
        self.location_page = LocationPage(self)
        self.download_page = DownloadPage(self)
        self.verify_page = VerifyPage(self)
        self.done_page = DonePage(self)
        for page_id, page in enumerate(
            (self.model_page, self.location_page, self.download_page, self.verify_page, self.done_page)
        ):
            self.setPage(page_id, page)
        if resume is not None:
            self._resume(resume)
        self.finished.connect(self._release_worker)

    # -- state ------------------------------------------------------------------------------------------------

    @property
    def location(self) -> Path:
        return self.hub.cache_dir if self.storage is StorageKind.HF_CACHE else self.folder

    def destination(self) -> Destination:
        return make_destination(self.storage, self.location, self.model.repo_id)

    def ensure_job(self) -> ModelDownload:
        """The job for the current choices (a new one if the model or the place changed)."""
        job = self.job
        if (
            job is None
            or job.model != self.model
            or job.destination.kind is not self.storage
            or job.destination.location != self.location.expanduser()
        ):
            job = ModelDownload(
                self.model,
                self.destination(),
                self.hub,
                self.library.registry,
                listener=self.runner.listener,
                retry=self.retry,
                disk_free=self.probe.disk_free,
                event_interval=self.event_interval,
            )
            self.job = job
        return job

    def set_token(self, token: str) -> None:
        self.hub = self.hub.with_token(token.strip())
        if self.job is not None:
            self.job.hub = self.hub
            self.job.plan = None

    @property
    def load_now(self) -> bool:
        return self.done_page.load_now.isChecked()

    def _resume(self, pending: PendingDownload) -> None:
        model = next((m for m in self.catalog if m.key == pending.model_key), None)
        if model is None:
            logger.warning("pending download of unknown model %s ignored", pending.model_key)
            return
        self.model = model
        self.storage = StorageKind(pending.storage)
        if self.storage is StorageKind.HF_CACHE:
            self.hub = dataclasses.replace(self.hub, cache_dir=Path(pending.location))
        else:
            self.folder = Path(pending.location)
        self.setStartId(PAGE_DOWNLOAD)

    # -- closing ----------------------------------------------------------------------------------------------

    def _ask(self, title: str, text: str) -> bool:
        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def reject(self) -> None:
        """Cancel: a running download stops (after asking); what was downloaded stays on disk for later, but the
        next start does not offer to resume it (that offer is for downloads the app was closed in the middle of)."""
        job = self.job
        working = self.currentId() in (PAGE_DOWNLOAD, PAGE_VERIFY) and self.installed_model is None
        if job is not None and working and not self._shutting_down:
            if self.runner.busy:
                if not self.confirm(
                    "Stop the download?",
                    "The part downloaded so far stays on disk: choose the same model and location again to resume.",
                ):
                    return
                job.cancel()  # the job forgets the pending record as it stops
            elif self.library.registry.pending is not None:
                self.library.registry.set_pending(None)  # paused or failed, then cancelled
        super().reject()

    def shutdown(self) -> None:
        """The app is closing: pause (the pending record stays, so the next start offers to resume)."""
        self._shutting_down = True
        if self.job is not None and self.runner.busy:
            self.job.pause()
        self.runner.close()

    def _release_worker(self) -> None:
        if not self.runner.busy:
            self.runner.close()
        else:
            self.runner.busy_changed.connect(lambda busy: None if busy else self.runner.close())


# ---------------------------------------------------------------------------------------------------- pages


class ModelPage(QWizardPage):
    """One radio button per model: its size, the memory it needs and whether this machine can run it."""

    def __init__(self, wizard: DownloadWizard) -> None:
        super().__init__(wizard)
        self.wiz = wizard
        self.setTitle("Choose a model")
        self.setSubTitle("Both are OpenAI's open-weight reasoning models. Only the files the app needs are fetched.")
        self.group = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        self.verdict_labels: dict[str, QLabel] = {}
        self.detail_labels: dict[str, QLabel] = {}
        grid = QGridLayout()
        for row, model in enumerate(wizard.catalog):
            radio = QRadioButton(model.key, self)
            radio.setAccessibleName(f"Download {model.key}")
            self.group.addButton(radio, row)
            self.radios[model.key] = radio
            details = QLabel(
                f"{_escape(model.summary)}<br>Download {human_bytes(model.download_bytes)} · "
                f"needs about {human_bytes(model.memory_needed)} of GPU or system memory",
                self,
            )
            details.setWordWrap(True)
            self.detail_labels[model.key] = details
            verdict = QLabel("Checking this machine…", self)
            verdict.setWordWrap(True)
            verdict.setAccessibleName(f"{model.key}: verdict for this machine")
            self.verdict_labels[model.key] = verdict
            grid.addWidget(radio, 3 * row, 0, 1, 2)
            grid.addWidget(details, 3 * row + 1, 1)
            grid.addWidget(verdict, 3 * row + 2, 1)
        grid.setColumnMinimumWidth(0, 16)
        grid.setColumnStretch(1, 1)
        self.machine_label = QLabel(self)
        self.machine_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addStretch(1)
        layout.addWidget(self.machine_label)
        self.radios[wizard.model.key].setChecked(True)
        self.group.idToggled.connect(lambda _id, _on: self.completeChanged.emit())
        self.machine: MachineInfo | None = None
        self._probe_task: asyncio.Future[None] | None = None

    def initializePage(self) -> None:
        self._probe_task = asyncio.ensure_future(self._probe())

    async def _probe(self) -> None:
        wizard = self.wiz
        target = wizard.location
        try:
            machine = await wizard.runner.call(lambda: wizard.probe(target))
        except Exception as exc:  # a probe failure must not block the choice
            logger.warning("machine probe failed: %s", exc)
            for label in self.verdict_labels.values():
                label.setText("Could not check this machine.")
            return
        self.show_machine(machine)

    def show_machine(self, machine: MachineInfo) -> None:
        self.machine = machine
        for model in self.wiz.catalog:
            result = assess(model, machine)
            mark = {"FITS_GPU": "✔", "CPU_ONLY": "◐", "DOES_NOT_FIT": "✘"}[result.verdict.name]
            self.verdict_labels[model.key].setText(f"{mark} <b>{result.verdict.value}</b> — {_escape(result.reason)}")
        gpu = machine.gpu
        self.machine_label.setText(
            "This machine: "
            + (f"{gpu.name} ({human_bytes(gpu.free_bytes)} free)" if gpu else "no CUDA GPU")
            + f", {human_bytes(machine.ram_bytes)} RAM, {human_bytes(machine.disk_free_bytes)} free disk "
            f"at {machine.disk_path}."
        )

    def isComplete(self) -> bool:
        return self.group.checkedId() >= 0

    def validatePage(self) -> bool:
        model = self.wiz.catalog[self.group.checkedId()]
        if model != self.wiz.model:
            self.wiz.model = model
            self.wiz.folder = default_folder(model)
        return True


class LocationPage(QWizardPage):
    """The Hugging Face cache (default, shared with other tools) or a folder; says what is already there."""

    def __init__(self, wizard: DownloadWizard) -> None:
        super().__init__(wizard)
        self.wiz = wizard
        self.setTitle("Choose where to put it")
        self.cache_radio = QRadioButton(self)
        self.folder_radio = QRadioButton("A folder:", self)
        self.folder_edit = QLineEdit(self)
        self.folder_edit.setAccessibleName("Model folder")
        self.browse_button = QPushButton("Browse…", self)
        self.status = _status_label(self, "Location status")
        self.start_over_button = QPushButton("Start over (delete the partial download)", self)
        self.start_over_button.hide()
        group = QButtonGroup(self)
        group.addButton(self.cache_radio)
        group.addButton(self.folder_radio)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_radio)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.cache_radio)
        layout.addLayout(folder_row)
        layout.addSpacing(12)
        layout.addWidget(self.status)
        layout.addWidget(self.start_over_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)
        self._ok = False
        self.cache_radio.toggled.connect(self.refresh)
        self.folder_edit.textChanged.connect(self._folder_typed)
        self.browse_button.clicked.connect(self._browse)
        self.start_over_button.clicked.connect(self._start_over)

    def initializePage(self) -> None:
        wizard = self.wiz
        self.setSubTitle(f"{wizard.model.key}: {human_bytes(wizard.model.download_bytes)} to download.")
        self.cache_radio.setText(f"The Hugging Face cache ({wizard.hub.cache_dir}), shared with other tools")
        self.folder_edit.blockSignals(True)
        self.folder_edit.setText(str(wizard.folder))
        self.folder_edit.blockSignals(False)
        (self.cache_radio if wizard.storage is StorageKind.HF_CACHE else self.folder_radio).setChecked(True)
        self.refresh()

    def _folder_typed(self) -> None:
        if not self.folder_radio.isChecked():
            self.folder_radio.setChecked(True)  # triggers refresh through the cache radio's toggled signal
        else:
            self.refresh()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder for the model", str(self.wiz.folder.parent))
        if folder:
            self.folder_edit.setText(folder)

    def refresh(self) -> None:
        wizard = self.wiz
        wizard.storage = StorageKind.HF_CACHE if self.cache_radio.isChecked() else StorageKind.FOLDER
        text = self.folder_edit.text().strip()
        if text:
            wizard.folder = Path(text).expanduser()
        destination = wizard.destination()
        copy = destination.find_local_copy(wizard.model)
        wizard.local_copy = copy
        self.start_over_button.setVisible(copy is not None and copy.partial_bytes > 0 and not copy.complete)
        self._ok, message = self._assess(destination, copy)
        self.status.setText(message)
        self.completeChanged.emit()

    def _assess(self, destination: Destination, copy: LocalCopy | None) -> tuple[bool, str]:
        model = self.wiz.model
        if self.wiz.storage is StorageKind.FOLDER and not self.folder_edit.text().strip():
            return False, "Choose a folder."
        if copy is not None and copy.complete:
            return True, (
                f"A complete copy of {model.key} is already here ({human_bytes(copy.present_bytes)}). "
                "It will be checked and used: nothing is downloaded again."
            )
        parent = existing_parent(destination.working_dir)
        if not os.access(parent, os.W_OK):
            return False, f"You cannot write to {parent}. Choose another location."
        on_disk = copy.present_bytes + copy.partial_bytes if copy is not None else 0
        needed = disk_needed(max(0, model.download_bytes - on_disk))
        free = self.wiz.probe.disk_free(destination.working_dir)
        if free < needed:
            return False, (
                f"<b>Not enough free space</b> at {_escape(str(parent))}: the download needs "
                f"{human_bytes(needed)} (with a safety margin) and {human_bytes(free)} is free. "
                "Free some space or choose another location."
            )
        if copy is not None and on_disk > 0:
            return True, (
                f"A partial download of {model.key} is here ({human_bytes(on_disk)} of "
                f"{human_bytes(model.download_bytes)}). It will be resumed."
            )
        return True, f"{human_bytes(free)} free; the download needs {human_bytes(needed)} with a safety margin."

    def _start_over(self) -> None:
        if self.wiz.confirm("Delete the partial download?", "The files downloaded so far will be deleted."):
            freed = self.wiz.destination().delete_partials()
            logger.info("deleted %d bytes of partial files", freed)
            self.refresh()

    def isComplete(self) -> bool:
        return self._ok

    def validatePage(self) -> bool:
        self.refresh()  # the disk may have filled up since the page was drawn
        return self._ok

    def nextId(self) -> int:
        copy = self.wiz.local_copy
        return PAGE_VERIFY if copy is not None and copy.complete else PAGE_DOWNLOAD


def _chain(previous: asyncio.Future[None] | None, run: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Future[None]:
    """Start ``run`` once ``previous`` (a page's earlier run, e.g. before Back/Next) has ended, whatever its outcome:
    two runs of one page never overlap on the same job."""

    async def after() -> None:
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception):
                await previous
        await run()

    return asyncio.ensure_future(after())


class _JobPage(QWizardPage):
    """A page that runs one step of the wizard's job on the worker: a status line, Retry, and Next once done.

    Subclasses implement ``_run`` (the step), ``_on_progress`` and ``_on_event`` (the job's reports)."""

    def __init__(self, wizard: DownloadWizard, title: str, status_name: str) -> None:
        super().__init__(wizard)
        self.wiz = wizard
        self.setTitle(title)
        self.status = _status_label(self, status_name)
        self.retry_button = QPushButton("Retry", self)
        self.retry_button.hide()
        self._done = False
        self._task: asyncio.Future[None] | None = None
        self.retry_button.clicked.connect(self.start)
        wizard.runner.progress.connect(self._on_progress)
        wizard.runner.job_event.connect(self._on_event)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def initializePage(self) -> None:
        self._done = False
        self.start()

    def cleanupPage(self) -> None:
        # Back: stop the job (partial files stay; coming forward again resumes, or checks from the start)
        if self.running and self.wiz.job is not None:
            self.wiz.job.pause()

    def start(self) -> None:
        self._task = _chain(self._task, self._run)

    async def _run(self) -> None:
        raise NotImplementedError

    def _on_progress(self, event: Progress) -> None:
        raise NotImplementedError

    def _on_event(self, event: DownloadEvent) -> None:
        raise NotImplementedError

    def show_error(self, error: DownloadError) -> None:
        self.retry_button.show()
        self.status.setText(_error_html(error))

    def _finish(self) -> None:
        self._done = True
        self.completeChanged.emit()
        if self.wiz.currentPage() is self:
            self.wiz.next()

    def isComplete(self) -> bool:
        return self._done


class DownloadPage(_JobPage):
    """Bars for the current file and the whole download, speed and ETA, Pause/Resume, errors, a token prompt."""

    def __init__(self, wizard: DownloadWizard) -> None:
        super().__init__(wizard, "Downloading", "Download status")
        self.file_label = QLabel(self)
        self.file_bar = QProgressBar(self)
        self.file_bar.setAccessibleName("Current file progress")
        self.total_label = QLabel(self)
        self.total_bar = QProgressBar(self)
        self.total_bar.setAccessibleName("Total progress")
        for bar in (self.file_bar, self.total_bar):
            bar.setRange(0, _BAR_SCALE)
            bar.setTextVisible(False)
        self.speed_label = QLabel(self)
        self.speed_label.setAccessibleName("Speed and time left")
        self.pause_button = QPushButton("Pause", self)
        self.token_edit = QLineEdit(self)
        self.token_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("hf_…")
        self.token_edit.setAccessibleName("Hugging Face access token")
        self.token_button = QPushButton("Use this token", self)
        self.token_row = QWidget(self)
        token_layout = QHBoxLayout(self.token_row)
        token_layout.setContentsMargins(0, 0, 0, 0)
        token_layout.addWidget(QLabel("Access token:", self.token_row))
        token_layout.addWidget(self.token_edit, 1)
        token_layout.addWidget(self.token_button)
        self.token_row.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.pause_button)
        buttons.addWidget(self.retry_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        for widget in (self.file_label, self.file_bar, self.total_label, self.total_bar, self.speed_label):
            layout.addWidget(widget)
        layout.addSpacing(8)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        layout.addWidget(self.token_row)
        layout.addStretch(1)
        self._paused = False
        self._transient = False  # the status shows "connecting" or "retrying": progress clears it
        self.pause_button.clicked.connect(self._pause_or_resume)
        self.token_button.clicked.connect(self._use_token)
        self.token_edit.returnPressed.connect(self._use_token)

    def initializePage(self) -> None:
        self.setSubTitle(f"{self.wiz.model.key} from {self.wiz.model.repo_id} to {self.wiz.location}")
        super().initializePage()

    async def _run(self) -> None:
        wizard = self.wiz
        job = wizard.ensure_job()
        self._paused = False
        self.pause_button.setText("Pause")
        self.pause_button.setEnabled(True)
        self.retry_button.hide()
        self.token_row.hide()
        self._set_transient("Connecting to the Hub…")
        try:
            await wizard.runner.call(job.download)
        except TransferStopped as stop:
            if stop.reason == "pause":
                self._paused = True
                self.pause_button.setText("Resume")
                kept = sum(s.bytes_on_disk for s in job.statuses()) if job.plan is not None else 0
                self.status.setText(f"Paused. {human_bytes(kept)} is kept on disk; Resume continues from there.")
            return
        except DownloadError as error:
            self.show_error(error)
            return
        self.pause_button.setEnabled(False)
        self.status.setText("Download complete.")
        self._finish()

    def show_error(self, error: DownloadError) -> None:
        self.pause_button.setEnabled(False)
        super().show_error(error)
        if isinstance(error, AuthRequiredError):
            self.token_row.show()
            self.token_edit.setFocus()

    def _pause_or_resume(self) -> None:
        if self._paused:
            self.start()
        elif self.running and self.wiz.job is not None:
            self.pause_button.setEnabled(False)
            self.status.setText("Pausing…")
            self.wiz.job.pause()
            self.pause_button.setEnabled(True)

    def _use_token(self) -> None:
        token = self.token_edit.text().strip()
        if token:
            self.wiz.set_token(token)
            self.start()

    def _on_progress(self, event: Progress) -> None:
        if event.phase != "download" or self.wiz.currentPage() is not self:
            return
        self.file_label.setText(f"{event.file}: {human_bytes(event.file_done)} of {human_bytes(event.file_total)}")
        self.file_bar.setValue(_fraction(event.file_done, event.file_total))
        self.total_label.setText(f"Total: {human_bytes(event.done)} of {human_bytes(event.total)}")
        self.total_bar.setValue(_fraction(event.done, event.total))
        if event.bytes_per_second:
            eta = f", {duration(event.eta_seconds)} left" if event.eta_seconds is not None else ""
            self.speed_label.setText(f"{human_bytes(event.bytes_per_second)}/s{eta}")
        if self._transient:
            self._transient = False
            self.status.setText("")

    def _on_event(self, event: DownloadEvent) -> None:
        if self.wiz.currentPage() is not self:
            return
        if isinstance(event, Retrying):
            self._set_transient(
                f"{_escape(event.reason)} Retrying in {duration(event.delay)} "
                f"(attempt {event.attempt + 1} of {event.max_attempts})…"
            )
        elif isinstance(event, StageChanged) and event.stage == "planning":
            self._set_transient("Connecting to the Hub…")

    def _set_transient(self, text: str) -> None:
        self._transient = True
        self.status.setText(text)


class VerifyPage(_JobPage):
    """Hashes every file against the Hub's record (re-fetching bad ones), installs and registers the model."""

    def __init__(self, wizard: DownloadWizard) -> None:
        super().__init__(wizard, "Checking the files", "Verification status")
        self.setSubTitle("Sizes and SHA-256 against the Hub's record; nothing is registered unless every file matches.")
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, _BAR_SCALE)
        self.bar.setAccessibleName("Verification progress")
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.status)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addStretch(1)

    async def _run(self) -> None:
        wizard = self.wiz
        job = wizard.ensure_job()
        copy = wizard.local_copy
        self.retry_button.hide()
        self.status.setText("")
        try:
            if copy is not None and copy.complete and wizard.installed_model is None:
                installed = await wizard.runner.call(lambda: job.use_local_copy(copy))
            else:
                installed = await wizard.runner.call(job.verify_and_install)
        except TransferStopped:
            return
        except DownloadError as error:
            self.show_error(error)
            return
        wizard.installed_model = installed
        wizard.library.notify()
        wizard.installed.emit(installed)
        self._finish()

    def _on_progress(self, event: Progress) -> None:
        if self.wiz.currentPage() is not self:
            return
        verb = "Checking" if event.phase == "verify" else "Fetching"
        self.label.setText(f"{verb} {event.file}: {human_bytes(event.file_done)} of {human_bytes(event.file_total)}")
        self.bar.setValue(_fraction(event.done, event.total))

    def _on_event(self, event: DownloadEvent) -> None:
        if self.wiz.currentPage() is not self:
            return
        if isinstance(event, Refetching):
            self.status.setText(f"{_escape(event.file)} failed its check ({_escape(event.reason)}): fetching it again.")
        elif isinstance(event, Retrying):
            self.status.setText(f"{_escape(event.reason)} Retrying in {duration(event.delay)}…")


class DonePage(QWizardPage):
    def __init__(self, wizard: DownloadWizard) -> None:
        super().__init__(wizard)
        self.wiz = wizard
        self.setTitle("Done")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.load_now = QCheckBox("Load it now", self)
        self.load_now.setChecked(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.load_now)
        layout.addStretch(1)
        self.setFinalPage(True)

    def initializePage(self) -> None:
        result = self.wiz.installed_model
        if result is None:
            return
        check = "verified against the Hub's checksums" if result.verified else "checked by the engine's validator"
        self.label.setText(
            f"<b>{_escape(result.name)}</b> is installed and {check}.<br>"
            f"{human_bytes(result.size_bytes)} in {_escape(result.path)}<br><br>"
            "It is listed under Model ▸ Installed models."
        )
