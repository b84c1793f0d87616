"""The attached files of a prompt being written, for any prompt that takes them (the chat's composer, the effort
comparison's prompt): the paperclip button, files dropped on the prompt's widget, the chips, the one-line notice of
files that could not be attached, and the check that the files fit the model's context before they are sent."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, Qt
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QFileDialog, QLabel, QToolButton, QWidget

from gpt_oss_desktop.app.chat.attachment_chips import AttachmentBar
from gpt_oss_desktop.app.chat.attachment_reader import AttachmentReader
from gpt_oss_desktop.app.chat.attachments import (
    CHAT_ADVICE,
    MAX_ATTACHMENT_BYTES,
    MAX_PDF_BYTES,
    AttachmentError,
    ContextRoom,
    Fit,
    context_notice,
    file_size,
    message_tokens,
)
from gpt_oss_desktop.app.history.attachments import Attachment

ContextRoomSource = Callable[[], ContextRoom | None]
"""The context the next message goes into (None: not known, e.g. no model), asked when files are sent."""

STILL_READING = "Wait a moment: the attached files are still being read."
_DRAG_EVENTS = (QEvent.Type.DragEnter, QEvent.Type.DragMove)


def local_files(mime: QMimeData) -> list[Path]:
    """The local files a drag carries (a file manager's drag); none for text, web links and the like."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


class AttachmentControls(QObject):
    """The files attached to the prompt of ``host``, and their widgets, which the host lays out: ``button`` (the
    paperclip: a file dialog), ``bar`` (a removable chip per file, hidden when empty) and ``notice`` (the files that
    could not be attached, and why; hidden when there is nothing to say).

    Files are read on a worker thread (:class:`AttachmentReader`) and join the bar as they arrive; the same file
    twice is attached once. A file that cannot be attached (too big, not text, unreadable) is named in the notice,
    and nothing else changes. :meth:`take_drops` makes a widget take files dropped on it.

    Before a message with files is sent, :meth:`ready` asks ``context_room`` whether they fit what is left of the
    context: if not, the notice says so (ending with ``advice``: what to do) and a second try with the same message
    goes anyway, unless the files would not fit even an empty context.
    """

    def __init__(self, host: QWidget, *, focus: QWidget, advice: str = CHAT_ADVICE) -> None:
        """``focus``: the prompt, given the keyboard back after the file dialog."""
        super().__init__(host)
        self._host = host
        self._focus = focus
        self._advice = advice
        self.context_room: ContextRoomSource | None = None
        self._warned: tuple[str, tuple[Attachment, ...]] | None = None  # told it does not fit what is left
        self._failures: list[str] = []  # the files of this round of reading that could not be attached

        self.bar = AttachmentBar(host)
        self.bar.changed.connect(self._on_attachments_changed)
        self.notice = QLabel(host)
        self.notice.setProperty("role", "error")
        self.notice.setWordWrap(True)
        self.notice.setAccessibleName("Attachment notice")
        self.notice.hide()
        self.reader = AttachmentReader(self)
        self.reader.read.connect(self._on_file_read)
        self.reader.failed.connect(self._on_file_failed)
        self.button = QToolButton(host)
        self.button.setProperty("iconName", "paperclip")
        # The paperclip alone, no text (its tooltip and accessible name say what it does): the bars it sits in must
        # still fit an 800-pixel window.
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        self.button.setProperty("role", "icon-control")  # narrow padding (app/shell/theme.py)
        self.button.setAccessibleName("Attach files")
        self.button.setToolTip(
            f"Attach text files (code, Markdown, CSV, JSON, logs…; up to {file_size(MAX_ATTACHMENT_BYTES)} each) "
            f"and PDFs (up to {file_size(MAX_PDF_BYTES)}; their text). You can also drop files here."
        )
        self.button.clicked.connect(self.choose_files)

    @property
    def attachments(self) -> tuple[Attachment, ...]:
        """The files attached, in order."""
        return self.bar.attachments()

    def choose_files(self) -> None:
        """The paperclip: pick files in a dialog (several at once), then attach them."""
        paths, _filter = QFileDialog.getOpenFileNames(self._host, "Attach files", "", "All files (*)")
        if paths:
            self.attach_files(paths)
        self._focus.setFocus()

    def attach_files(self, paths: Iterable[Path | str]) -> None:
        """Read ``paths`` (on a worker thread) and add each as a chip as it arrives; the ones that cannot be
        attached are named in the notice."""
        paths = list(paths)
        if not paths:
            return
        if not self.reader.pending:
            self._failures = []
            self.hide_notice()
        self.reader.start(paths)

    def set_attachments(self, attachments: Sequence[Attachment]) -> None:
        """Replace the files (a draft given back, a message to edit, a saved prompt shown). Files still being read
        for what was there before are dropped: they must not join what is there now."""
        self.reader.cancel()
        self._failures = []
        self.hide_notice()
        self.bar.set_attachments(attachments)

    def ready(self, text: str) -> bool:
        """Whether a message of ``text`` and the attached files may be sent now; if not, the notice says why. Not
        while files are still being read; not when the files do not fit what is left of the context, or the message
        alone would leave its answer less than a quarter of the context, unless the user was told so and sends the
        same message again; never when it would not fit even an empty context."""
        if self.reader.pending:
            self.show_notice(STILL_READING)
            return False
        files = self.attachments
        room = self.context_room() if self.context_room is not None else None
        # Typed text alone is checked only when it could matter (a token is at least a character): pasting a whole
        # document is the case, a question is not, and it is not tokenized on every send.
        if room is None or (not files and 4 * len(text) <= 3 * room.total):
            return True
        needed = message_tokens(text, files)
        fit = room.fit(needed)
        if not files and fit is Fit.NOT_IN_WHAT_IS_LEFT:
            fit = Fit.FITS  # long typed text in a long chat: the chat's oldest turns make room, as for any message
        if fit is Fit.FITS or (fit.sendable_anyway and self._warned == (text, files)):
            self._warned = None
            return True
        self._warned = (text, files) if fit.sendable_anyway else None
        self.show_notice(context_notice(needed, room, advice=self._advice, files=bool(files)))
        return False

    def show_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.show()

    def hide_notice(self) -> None:
        self.notice.clear()
        self.notice.hide()

    def take_drops(self, widget: QWidget) -> None:
        """Files dragged onto ``widget`` (or onto a child of it that takes no drops itself) are attached."""
        widget.setAcceptDrops(True)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # A drag without local files (text, a web link) goes on to the widget's own handling.
        if event.type() in _DRAG_EVENTS or event.type() == QEvent.Type.Drop:
            assert isinstance(event, QDropEvent)  # QDragEnterEvent and QDragMoveEvent are QDropEvents
            files = local_files(event.mimeData())
            if files:
                event.acceptProposedAction()
                if event.type() == QEvent.Type.Drop:
                    self.attach_files(files)
                return True
        return super().eventFilter(watched, event)

    def _on_file_read(self, attachment: Attachment) -> None:
        if attachment in self.bar.attachments():
            return  # the same file twice: the model would read it twice
        self.bar.add(attachment)

    def _on_file_failed(self, error: AttachmentError) -> None:
        self._failures.append(str(error))
        self.show_notice("; ".join(self._failures))

    def _on_attachments_changed(self) -> None:
        self._warned = None  # a warning was about other files
