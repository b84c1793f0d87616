"""Reading attached files off the GUI thread: a file of up to 2 MiB on a slow disk and its token count (about 0.3 s
for 2 MiB of code) would otherwise freeze the window while it is read."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal

from gpt_oss_desktop.app.chat.attachments import AttachmentError, UnreadableFileError, read_attachment
from gpt_oss_desktop.app.history.attachments import Attachment

logger = logging.getLogger(__name__)


class AttachmentReader(QObject):
    """Reads files with :func:`read_attachment` on one worker thread, in the order they were given, and reports each
    back on this object's thread.

    :meth:`cancel` drops what has not been reported yet (the composer was cleared or shows another chat's draft):
    a file read for one chat must not turn up in another.

    Signals:
        read(Attachment): a file was read.
        failed(AttachmentError): a file could not be attached, and why.
    """

    read = Signal(Attachment)
    failed = Signal(AttachmentError)
    # From the worker thread to this object's thread (queued): the batch a file belongs to, and what came of it.
    # object: the outcome is Attachment | AttachmentError, and a Signal has one type per argument.
    _done = Signal(int, object)

    def __init__(self, parent: QObject) -> None:
        # A parent is required: the worker holds this object while it emits, and a parentless QObject whose last
        # reference went away on the worker thread would be destroyed there (see app/shell/garbage_collector.py).
        super().__init__(parent)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attachment-read")
        self._batch = 0
        self._pending = 0
        self._done.connect(self._on_done, Qt.ConnectionType.QueuedConnection)
        self.destroyed.connect(functools.partial(_shut_down, self._executor))

    @property
    def pending(self) -> int:
        """Files asked for and not reported yet."""
        return self._pending

    def start(self, paths: Iterable[Path | str]) -> None:
        """Read each of ``paths``; each is reported by ``read`` or ``failed``."""
        for path in paths:
            try:
                self._executor.submit(self._read, self._batch, Path(path))
            except RuntimeError:  # shut down (the window is closing): nothing more is read
                return
            self._pending += 1

    def cancel(self) -> None:
        """Forget the files not reported yet (they may still be read, but are never reported)."""
        self._batch += 1
        self._pending = 0

    def _read(self, batch: int, path: Path) -> None:
        """On the worker thread."""
        outcome: Attachment | AttachmentError
        try:
            outcome = read_attachment(path)
        except AttachmentError as exc:
            outcome = exc
        except Exception as exc:  # a bug: say so without the path or the content (a message may hold either)
            logger.error("reading an attached file failed: %s", type(exc).__name__)
            outcome = UnreadableFileError(path.name, "could not be read (an internal error; see the log)")
        # RuntimeError: the composer (and this object with it) was deleted while the file was read.
        with contextlib.suppress(RuntimeError):
            self._done.emit(batch, outcome)

    def _on_done(self, batch: int, outcome: object) -> None:
        if batch != self._batch:
            return  # cancelled
        self._pending -= 1
        if isinstance(outcome, Attachment):
            self.read.emit(outcome)
        elif isinstance(outcome, AttachmentError):
            self.failed.emit(outcome)


def _shut_down(executor: ThreadPoolExecutor, *_destroyed: object) -> None:
    executor.shutdown(wait=False, cancel_futures=True)
