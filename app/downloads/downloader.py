"""Download, verify and register one model: the whole job, without Qt.

:class:`ModelDownload` runs in two blocking phases, each called on a worker thread:

1. :meth:`~ModelDownload.download` plans (asks the Hub which ``original/`` files exist, with sizes and hashes),
   refuses to start without enough free disk, records a pending download, then fetches every file not already on
   disk, resuming partial files. Transient errors (a dropped connection, a 5xx, no network for a moment) are
   retried with exponential backoff; after each failure the transfer resumes from the bytes on disk.
2. :meth:`~ModelDownload.verify_and_install` checks each file's size and SHA-256 (git id for small files) against
   the plan; a file that fails is deleted and fetched again (up to :data:`MAX_REFETCHES` times). Only when every
   file matched are they moved into place, checked by the engine's validator, and the model registered.

:meth:`pause` and :meth:`cancel` may be called from any thread; the running phase raises
:class:`~app.downloads.errors.TransferStopped` within one chunk, keeping partial files. A paused job continues
when a phase is called again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

from gpt_oss_desktop.app.downloads.catalog import CatalogModel
from gpt_oss_desktop.app.downloads.destination import Destination, FileState, FileStatus, LocalCopy
from gpt_oss_desktop.app.downloads.errors import (
    ConnectionDroppedError,
    NetworkError,
    NotEnoughSpaceError,
    OfflineError,
    TransferStopped,
    VerificationError,
    classify_error,
    human_bytes,
)
from gpt_oss_desktop.app.downloads.hardware import disk_free_bytes, disk_needed
from gpt_oss_desktop.app.downloads.hub import HubSettings, fetch_plan
from gpt_oss_desktop.app.downloads.plan import DownloadPlan, RemoteFile
from gpt_oss_desktop.app.downloads.progress import (
    MIN_EVENT_INTERVAL,
    DownloadEvent,
    Listener,
    Phase,
    ProgressTracker,
    Refetching,
    Retrying,
    StageChanged,
    StopSignal,
    bridge_bar_class,
)
from gpt_oss_desktop.app.downloads.registry import InstalledFile, InstalledModel, ModelRegistry, PendingDownload
from gpt_oss_desktop.app.downloads.transfer import fetch_to_partial
from gpt_oss_desktop.app.downloads.validate import CheckedCheckpoint, ensure_writable, validate_checkpoint
from gpt_oss_desktop.app.downloads.verify import Expected, mismatch

logger = logging.getLogger(__name__)

MAX_REFETCHES: Final = 2
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: ``first_delay``, doubling, capped at ``max_delay``; ``max_attempts`` failures in a row
    (a transfer that moved bytes resets the count) end the phase with the last error."""

    max_attempts: int = 8
    first_delay: float = 1.0
    max_delay: float = 60.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay, self.first_delay * 2 ** (attempt - 1))


class ModelDownload:
    """One model to one destination. Blocking methods run on a worker thread; pause/cancel from any thread."""

    def __init__(
        self,
        model: CatalogModel,
        destination: Destination,
        hub: HubSettings,
        registry: ModelRegistry,
        *,
        listener: Listener | None = None,
        retry: RetryPolicy | None = None,
        disk_free: Callable[[Path], int] = disk_free_bytes,
        validate: Callable[[Path], CheckedCheckpoint] = validate_checkpoint,
        revision: str = "main",
        event_interval: float = MIN_EVENT_INTERVAL,
    ) -> None:
        self.model = model
        self.destination = destination
        self.hub = hub
        self.registry = registry
        self.listener = listener
        self.retry = retry or RetryPolicy()
        self.disk_free = disk_free
        self.validate = validate
        self.revision = revision
        self.event_interval = event_interval
        self.plan: DownloadPlan | None = None
        self._stop = StopSignal()

    # -- control (any thread) ---------------------------------------------------------------------------------

    def pause(self) -> None:
        self._stop.request("pause")

    def cancel(self) -> None:
        self._stop.request("cancel")

    # -- planning ---------------------------------------------------------------------------------------------

    def prepare(self) -> DownloadPlan:
        """The plan (asks the Hub once; later calls reuse it)."""
        if self.plan is None:
            self._emit(StageChanged("planning", f"Asking the Hub for {self.model.repo_id}…"))
            self.plan = fetch_plan(self.hub, self.model.repo_id, self.revision)
        return self.plan

    def statuses(self) -> list[FileStatus]:
        plan = self.prepare()
        return [self.destination.status(plan, f) for f in plan.files]

    def bytes_to_fetch(self) -> int:
        return sum(s.file.size - s.bytes_on_disk for s in self.statuses() if s.state is not FileState.INSTALLED)

    def check_space(self) -> None:
        """Refuse (NotEnoughSpaceError) unless the destination has the missing bytes plus a margin free."""
        missing = sum(
            s.file.size - s.bytes_on_disk for s in self.statuses() if s.state in (FileState.MISSING, FileState.PARTIAL)
        )
        if missing == 0:
            return
        needed = disk_needed(missing)
        free = self.disk_free(self.destination.working_dir)
        if free < needed:
            raise NotEnoughSpaceError(needed, free, self.destination.location)

    # -- phase 1: download ------------------------------------------------------------------------------------

    def download(self) -> None:
        """Fetch every file that is not on disk yet (resuming partial ones)."""
        self._stop.clear()
        try:
            plan = self.prepare()
            ensure_writable(self.destination.working_dir)
            self.check_space()
            self.registry.set_pending(
                PendingDownload(
                    self.model.key,
                    plan.repo_id,
                    plan.revision,
                    str(self.destination.kind),
                    str(self.destination.location),
                )
            )
            self._emit(StageChanged("downloading", f"Downloading {human_bytes(plan.total_bytes)}"))
            tracker = self._download_tracker(plan)
            for file in plan.files:
                self._fetch(plan, file, tracker)
        except TransferStopped as stop:
            self._stopped(stop)
            raise

    def _download_tracker(self, plan: DownloadPlan) -> ProgressTracker:
        return self._tracker("download", plan.total_bytes)

    def _tracker(self, phase: Phase, total: int) -> ProgressTracker:
        # The listener is looked up at each event, so it can be swapped while a job exists.
        return ProgressTracker(phase, total, self._emit, min_interval=self.event_interval)

    def _resync(self, plan: DownloadPlan, tracker: ProgressTracker) -> None:
        """Bytes done = bytes on disk (after a failed attempt the counter may be ahead of the file)."""
        tracker.done = sum(s.bytes_on_disk for s in (self.destination.status(plan, f) for f in plan.files))

    def _fetch(self, plan: DownloadPlan, file: RemoteFile, tracker: ProgressTracker) -> None:
        attempt = 0
        while True:
            self._stop.check()
            status = self.destination.status(plan, file)
            if status.state in (FileState.INSTALLED, FileState.STAGED):
                return
            self._resync(plan, tracker)
            tracker.start_file(file.path, file.size, status.bytes_on_disk)
            before = status.bytes_on_disk

            def on_bytes(n: int) -> None:
                self._stop.check()
                tracker.add(n)

            try:
                if file.lfs:
                    fetch_to_partial(self.hub, plan, file, self.destination.partial_path(file), on_bytes)
                else:
                    self.destination.fetch_small(plan, file, self.hub, bridge_bar_class(on_bytes))
                tracker.end_file()
                return
            except TransferStopped:
                raise
            except Exception as exc:
                error = classify_error(exc, what=file.path, path=self.destination.location)
                now = self.destination.status(plan, file).bytes_on_disk
                if isinstance(error, ConnectionDroppedError):
                    error = ConnectionDroppedError(
                        f"The server closed the connection in the middle of {file.path} "
                        f"({human_bytes(now)} of {human_bytes(file.size)} downloaded)."
                    )
                if not error.transient:
                    raise error from exc
                attempt = 1 if now > before else attempt + 1
                if attempt >= self.retry.max_attempts:
                    raise error from exc
                delay = self.retry.delay(attempt)
                logger.warning("%s (retrying in %.1f s, attempt %d)", error, delay, attempt)
                self._emit(Retrying(file.path, attempt, self.retry.max_attempts, delay, str(error)))
                self._stop.wait(delay)

    def _with_retries(self, what: str, action: Callable[[], T]) -> T:
        attempt = 0
        while True:
            self._stop.check()
            try:
                return action()
            except TransferStopped:
                raise
            except Exception as exc:
                error = classify_error(exc, what=what, path=self.destination.location)
                attempt += 1
                if not error.transient or attempt >= self.retry.max_attempts:
                    raise error from exc
                delay = self.retry.delay(attempt)
                self._emit(Retrying(what, attempt, self.retry.max_attempts, delay, str(error)))
                self._stop.wait(delay)

    # -- phase 2: verify, install, register -------------------------------------------------------------------

    def verify_and_install(self) -> InstalledModel:
        """Check every file against the Hub's sizes and hashes (re-fetching bad ones), install, register."""
        self._stop.clear()
        try:
            return self._verify_and_install()
        except TransferStopped as stop:
            self._stopped(stop)
            raise

    def _verify_and_install(self) -> InstalledModel:
        plan = self.prepare()
        self._emit(StageChanged("verifying", "Checking sizes and SHA-256 against the Hub"))
        tracker = self._tracker("verify", plan.total_bytes)
        for file in plan.files:
            self._verify_file(plan, file, tracker)
        self._emit(StageChanged("installing", "Installing"))
        for file in plan.files:
            if self.destination.status(plan, file).state is FileState.STAGED:
                self._install(plan, file)
        model_dir = self.destination.model_dir(plan.commit)
        for file in plan.files:
            if self.destination.status(plan, file).state is not FileState.INSTALLED:
                raise VerificationError(f"{file.path} is not in place after installing; nothing was registered.")
        checked = self.validate(model_dir)
        installed = InstalledModel(
            name=self.model.key,
            path=str(model_dir),
            layout=checked.layout,
            size_bytes=plan.total_bytes,
            verified=True,
            check="sha256",
            source="download",
            storage=str(self.destination.kind),
            repo_id=plan.repo_id,
            commit=plan.commit,
            files=tuple(_installed_file(f) for f in plan.files),
        )
        self.registry.add(installed)
        self.registry.set_pending(None)
        self.destination.tidy()
        self._emit(StageChanged("done", f"{self.model.key} is installed"))
        return installed

    def _verify_file(self, plan: DownloadPlan, file: RemoteFile, tracker: ProgressTracker) -> None:
        problem = "not checked"
        for round_ in range(MAX_REFETCHES + 1):
            status = self.destination.status(plan, file)
            if status.state not in (FileState.INSTALLED, FileState.STAGED):
                self._fetch(plan, file, self._download_tracker(plan))
                status = self.destination.status(plan, file)
            assert status.path is not None
            start = tracker.done
            tracker.start_file(file.path, file.size)

            def on_bytes(n: int) -> None:
                self._stop.check()
                tracker.add(n)

            found = mismatch(status.path, Expected.of(file), on_bytes)
            tracker.end_file()
            if found is None:
                return
            problem = found
            tracker.done = start  # the file is checked again after it is fetched again
            logger.warning("%s failed verification (%s); fetching it again", file.path, problem)
            if round_ == MAX_REFETCHES:
                break
            self._emit(Refetching(file.path, problem))
            self.destination.discard(plan, file)
        raise VerificationError(
            f"{file.path} does not match the Hub's record ({problem}), even after fetching it again "
            f"{MAX_REFETCHES} times. Nothing was registered."
        )

    def _install(self, plan: DownloadPlan, file: RemoteFile) -> Path:
        return self._with_retries(file.path, lambda: self.destination.install(plan, file, self.hub))

    def run(self) -> InstalledModel:
        """Both phases."""
        self.download()
        return self.verify_and_install()

    # -- a copy already on disk -------------------------------------------------------------------------------

    def use_local_copy(self, copy: LocalCopy) -> InstalledModel:
        """Adopt a complete copy found on disk: against the Hub's record when the Hub answers (fetching only what
        changed), else offline against the hashes the disk recorded (a cache blob is named by its SHA-256)."""
        try:
            self.prepare()
        except (OfflineError, NetworkError) as exc:
            logger.info("Hub unreachable (%s); checking the copy on disk against its own records", exc)
            return self.adopt_offline(copy)
        return self.run()

    def adopt_offline(self, copy: LocalCopy) -> InstalledModel:
        self._stop.clear()
        if not copy.complete:
            raise VerificationError(
                f"The copy of {self.model.key} at {copy.model_dir} is incomplete, and the Hub cannot be reached to "
                "finish it.",
                advice="Connect to the internet to resume the download.",
            )
        self._emit(StageChanged("verifying", "Checking the copy on disk"))
        tracker = self._tracker("verify", sum(f.expected.size or 0 for f in copy.files))
        try:
            for local in copy.files:
                tracker.start_file(local.path, local.expected.size or 0)

                def on_bytes(n: int) -> None:
                    self._stop.check()
                    tracker.add(n)

                if local.expected.sha256 or local.expected.git_sha1:
                    problem = mismatch(local.local_path, local.expected, on_bytes)
                    if problem is not None:
                        raise VerificationError(
                            f"{local.path} in {copy.model_dir} is damaged ({problem}).",
                            advice="Connect to the internet and download the model again to replace it.",
                        )
                tracker.end_file()
        except TransferStopped as stop:
            self._stopped(stop)
            raise
        checked = self.validate(copy.model_dir)
        installed = InstalledModel(
            name=self.model.key,
            path=str(copy.model_dir),
            layout=checked.layout,
            size_bytes=checked.size_bytes,
            verified=copy.hashed,
            check="sha256" if copy.hashed else "structure",
            source="existing",
            storage=str(self.destination.kind),
            repo_id=self.model.repo_id,
            commit=copy.commit,
            files=tuple(
                InstalledFile(f.path, f.expected.size or 0, f.expected.sha256, f.expected.git_sha1) for f in copy.files
            ),
        )
        self.registry.add(installed)
        self._emit(StageChanged("done", f"{self.model.key} is installed"))
        return installed

    # -- helpers ----------------------------------------------------------------------------------------------

    def discard_partials(self) -> int:
        """Delete this model's partial files at the destination (start over); returns bytes freed."""
        return self.destination.delete_partials()

    def _stopped(self, stop: TransferStopped) -> None:
        logger.info("%s: %s", self.model.key, "paused" if stop.reason == "pause" else "cancelled")
        if stop.reason == "cancel":
            # Partial files stay (the location page offers to resume them); the restart prompt does not.
            self.registry.set_pending(None)

    def _emit(self, event: DownloadEvent) -> None:
        if self.listener is not None:
            self.listener(event)


def _installed_file(file: RemoteFile) -> InstalledFile:
    return InstalledFile(file.path, file.size, file.sha256, None if file.lfs else file.blob_id)
