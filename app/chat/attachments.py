"""Reading a file to attach to a message (no Qt): a size cap, text encodings only, and its length in tokens.

gpt-oss reads text only, so an attachment is a text file: UTF-8 (with or without a byte-order mark) or UTF-16 with
one, or a PDF, whose text is taken out page by page (engine/pdf_text.py; a scan or a locked PDF is refused with the
reason). Anything else that does not decode as text (a NUL byte, bytes that are not UTF-8) is refused as "not a text
file" rather than guessed at: a wrong guess would put garbage in front of the model with no sign of it. Every
refusal is an :class:`AttachmentError` whose message names the file (its name only: a path never reaches a
message or a log) and says what to do.

Also here: the figures a chip shows (``notes.md · 2.1 KiB · 512 tokens``) and whether a message with its files
still fits the model's context.
"""

from __future__ import annotations

import codecs
import enum
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from gpt_oss_desktop.app.chat.conversation import Turn
from gpt_oss_desktop.app.chat.stats import count
from gpt_oss_desktop.app.history.attachments import Attachment, attachment_block, clean_name
from gpt_oss_desktop.engine.context_fit import answer_room
from gpt_oss_desktop.engine.errors import PromptTextError
from gpt_oss_desktop.engine.harmony import check_encodable
from gpt_oss_desktop.engine.input_files import describe_os_error
from gpt_oss_desktop.engine.pdf_text import PdfTextError, is_pdf, pdf_text
from gpt_oss_desktop.engine.vocab import get_encoding

logger = logging.getLogger(__name__)

MAX_ATTACHMENT_BYTES: Final = 2 * 1024 * 1024
# PDFs carry fonts and pictures around their text: a 300-page paper with figures is often 20 MiB.
MAX_PDF_BYTES: Final = 64 * 1024 * 1024
# Text is counted in pieces of at most this many characters, cut at line ends where it can be: the tokenizer's
# merge step is quadratic in the length of one run of letters or symbols (100,000 characters of "a" take 4 s, and
# 2 MiB of them overflow its stack), and a cut only changes the count by a token here and there.
_COUNT_CHUNK_CHARS: Final = 2048
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    # UTF-32's marks start like UTF-16's; such a file decodes to a NUL character first and is refused below.
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class AttachmentError(Exception):
    """A file that cannot be attached. ``name``: the file's name (no folder); ``reason``: what is wrong with it,
    and the message is both, ready to show."""

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name} {reason}")


class FileTooLargeError(AttachmentError):
    """Bigger than the cap on one attached file."""


class NotTextError(AttachmentError):
    """Not UTF-8 or UTF-16 (with a byte-order mark) text: a binary file, or text in another encoding."""


class UnreadableFileError(AttachmentError):
    """Gone, a folder, not a regular file, or not readable (permissions, an I/O error)."""


def file_size(num_bytes: int) -> str:
    """A file's size as a chip shows it: '812 B', '2.1 KiB', '1.5 MiB' (binary units, as the cap is)."""
    if num_bytes < 1024:
        return f"{num_bytes} B"
    value, unit = (num_bytes / 1024, "KiB") if num_bytes < 1024 * 1024 else (num_bytes / (1024 * 1024), "MiB")
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def describe(attachment: Attachment) -> str:
    """One line about a file: ``notes.md · 2.1 KiB · 512 tokens`` (no count when it is not known)."""
    parts = [attachment.name, file_size(attachment.size)]
    if attachment.tokens is not None:
        parts.append(f"{count(attachment.tokens)} token{'' if attachment.tokens == 1 else 's'}")
    return " · ".join(parts)


def read_attachment(path: Path | str, *, max_bytes: int = MAX_ATTACHMENT_BYTES) -> Attachment:
    """The file at ``path`` as an attachment: its name, decoded text, size and token count. Blocking (a read of up to
    ``max_bytes`` and the count): run it off the GUI thread. Raises :class:`AttachmentError`."""
    path = Path(path)
    try:
        name = clean_name(path.name)
    except ValueError:
        raise UnreadableFileError("(a file without a name)", "cannot be attached") from None
    pdf_named = name.lower().endswith(".pdf")
    data = _read_bounded(path, name, max(max_bytes, MAX_PDF_BYTES) if pdf_named else max_bytes)
    if is_pdf(data):
        try:
            text = pdf_text(data).text
        except PdfTextError as exc:
            raise NotTextError(name, str(exc)) from None
    elif pdf_named:
        raise NotTextError(name, "is not a PDF (its content does not start as one)")
    else:
        text = decode_text(data, name)
    try:
        check_encodable(text)  # a run the encoder would stall on: refused now, not when the message is sent
    except PromptTextError as exc:
        raise NotTextError(name, f"cannot be read by the model: {exc}") from None
    return Attachment(name, text, len(data), count_tokens(text))


def _read_bounded(path: Path, name: str, max_bytes: int) -> bytes:
    cap = file_size(max_bytes)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableFileError(name, "is a folder: attach the files in it instead")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFileError(name, "is not a regular file")
        if info.st_size > max_bytes:
            raise FileTooLargeError(name, f"is {_size_over(info.st_size, cap)}: files of up to {cap} can be attached")
        # Non-blocking: a file swapped for a FIFO after the check above cannot hang the open (engine/input_files.py).
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except AttachmentError:
        raise
    except OSError as exc:
        logger.info("an attached file could not be read: %s", type(exc).__name__)
        # describe_os_error falls back on str(exc), which holds the path: only its named reasons are shown.
        reason = describe_os_error(exc) if exc.strerror else "an input/output error"
        raise UnreadableFileError(name, f"cannot be read: {reason}") from None
    except ValueError:  # a NUL in the path, which no file can have
        raise UnreadableFileError(name, "cannot be read: not a valid file name") from None
    if len(data) > max_bytes:  # it grew after the check
        raise FileTooLargeError(name, f"is larger than {cap}: files of up to {cap} can be attached")
    return data


def _size_over(num_bytes: int, cap: str) -> str:
    # A size just over the cap rounds to the cap ("2 MiB"), which would read as no reason at all: bytes then.
    shown = file_size(num_bytes)
    return f"{num_bytes:,} bytes" if shown == cap else shown


def decode_text(data: bytes, name: str) -> str:
    """``data`` as text: UTF-8 (a byte-order mark allowed) or UTF-16 with its mark. Raises :class:`NotTextError`
    for anything else, and for text holding a NUL character (which text files do not)."""
    not_text = NotTextError(
        name, "is not a text file (text in UTF-8, or UTF-16 with a byte-order mark, and PDFs can be attached)"
    )
    encoding = next((codec for bom, codec in _BOMS if data.startswith(bom)), "utf-8")
    if encoding == "utf-8" and b"\x00" in data:
        raise not_text
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise not_text from None
    if "\x00" in text:
        raise not_text
    return text


def count_tokens(text: str) -> int:
    """How many tokens of the bundled tokenizer ``text`` is, as the model would read it (special-token names count
    as the plain text they are). Exact but for a token here and there at the pieces' edges."""
    encoding = get_encoding()
    return sum(len(encoding.encode(piece, disallowed_special=())) for piece in _pieces(text))


def _pieces(text: str) -> Iterator[str]:
    """``text`` in pieces of at most ``_COUNT_CHUNK_CHARS`` characters, whole lines where they fit."""
    piece: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        if size + len(line) > _COUNT_CHUNK_CHARS and piece:
            yield "".join(piece)
            piece, size = [], 0
        while len(line) > _COUNT_CHUNK_CHARS:
            yield line[:_COUNT_CHUNK_CHARS]
            line = line[_COUNT_CHUNK_CHARS:]
        piece.append(line)
        size += len(line)
    if piece:
        yield "".join(piece)


def attachment_tokens(attachment: Attachment) -> int:
    """What a file costs the prompt: its content and the lines around it (the name, the fences)."""
    content = attachment.tokens if attachment.tokens is not None else count_tokens(attachment.text)
    return content + count_tokens(attachment_block(Attachment(attachment.name, "", 0)))


def message_tokens(text: str, attachments: Sequence[Attachment]) -> int:
    """What a user message with its files costs the prompt (the harmony header of the message aside)."""
    return count_tokens(text) + sum(attachment_tokens(a) for a in attachments)


# Each message's harmony header and end (<|start|>user<|message|> ... <|end|>, a channel for answers), roughly.
_MESSAGE_OVERHEAD: Final = 6


def conversation_tokens(turns: Sequence[Turn]) -> int:
    """An estimate of what ``turns`` take of the next prompt: each question with its files, each answer (finished
    turns' reasoning is left out of a prompt), and their headers; the system message aside."""
    total = 0
    for turn in turns:
        total += message_tokens(turn.user, turn.attachments) + _MESSAGE_OVERHEAD
        if turn.answer:
            total += count_tokens(turn.answer) + _MESSAGE_OVERHEAD
    return total


class Fit(enum.Enum):
    """Whether a message fits the context: in what is left, only in a new chat, with little room for its answer, or
    not even there."""

    FITS = "fits"
    NOT_IN_WHAT_IS_LEFT = "not in what is left"
    CRAMPED = "cramped"  # alone it leaves less than the room a long chat keeps for its answer (a quarter)
    NEVER = "never"

    @property
    def sendable_anyway(self) -> bool:
        """The user may send it after being told (by sending the same message again)."""
        return self in (Fit.NOT_IN_WHAT_IS_LEFT, Fit.CRAMPED)


@dataclass(frozen=True, slots=True)
class ContextRoom:
    """The model's context: ``total`` tokens, of which the chat so far takes ``used``."""

    used: int
    total: int

    @property
    def left(self) -> int:
        return max(0, self.total - self.used)

    def fit(self, needed: int) -> Fit:
        if needed > self.total:
            return Fit.NEVER
        if needed > self.total - answer_room(self.total, self.total):
            return Fit.CRAMPED
        return Fit.FITS if needed <= self.left else Fit.NOT_IN_WHAT_IS_LEFT


CHAT_ADVICE: Final = "start a new chat for them, remove some, or send again to send anyway"
"""What to do about files that fit an empty context but not what is left of it, in a chat."""


def context_notice(needed: int, room: ContextRoom, *, advice: str = CHAT_ADVICE, files: bool = True) -> str:
    """What to tell the user about a message of ``needed`` tokens that does not fit ``room`` ('' when it fits);
    ``advice`` says what to do when it would fit an empty context; ``files``: the message has files (else it is its
    text that is long)."""
    fit = room.fit(needed)
    subject = "The attached files need" if files else "This message needs"
    if fit is Fit.FITS:
        return ""
    if fit is Fit.NEVER:
        remedy = "remove some of them" if files else "shorten it"
        return (
            f"{subject} about {count(needed)} tokens, more than the model's whole context ({count(room.total)}): "
            f"{remedy}."
        )
    if fit is Fit.CRAMPED:
        remedy = "remove some of them" if files else "shorten it"
        return (
            f"{subject} about {count(needed)} of the model's {count(room.total)} tokens of context: its answer, "
            f"thinking included, would have room for only about {count(room.total - needed)}. {remedy.capitalize()}, "
            "or send again to send anyway."
        )
    return f"{subject} about {count(needed)} tokens, but only {count(room.left)} of the context are left: {advice}."
