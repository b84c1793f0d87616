"""The text of a PDF, for a model that reads text only: a file attached to a message, or a page the browser opened.

Each page's text is headed by a ``[Page N]`` line, so the model (and the user reading a quote) can say where a passage
is. A PDF with no text in it (a scan: pictures of pages) and one locked with a password are refused with a reason,
as is anything pypdf cannot parse; a very long one is cut at ``max_chars`` with a line saying where. Blocking and
pure Python (about a second for a hundred pages): run it off the GUI thread.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import Final

from pypdf import PdfReader
from pypdf.errors import PyPdfError

logger = logging.getLogger(__name__)
# pypdf warns about every small flaw of a file it still reads (most PDFs have some): not for the app's log.
logging.getLogger("pypdf").setLevel(logging.ERROR)

PDF_MAGIC: Final = b"%PDF-"
# As much text as an attached text file may hold; a book past it is cut (no context holds that much anyway).
MAX_PDF_TEXT_CHARS: Final = 2 * 1024 * 1024


class PdfTextError(ValueError):
    """The PDF's text cannot be had; the message says why, to finish a sentence naming the file ("is …")."""


@dataclass(frozen=True, slots=True)
class PdfText:
    """``text``: every page read, each headed ``[Page N]``; ``pages``: how many the file has; ``pages_read``: how many
    are in ``text`` (fewer when it was cut); ``title``: the document's own title, or ""."""

    text: str
    pages: int
    pages_read: int
    title: str = ""

    @property
    def cut(self) -> bool:
        return self.pages_read < self.pages


def is_pdf(data: bytes) -> bool:
    # At the very start (after blank space at most): a text file that merely mentions "%PDF-" is still text.
    return data[:1024].lstrip(b"\x00\t\n\r ").startswith(PDF_MAGIC)


def pdf_text(data: bytes, *, max_chars: int = MAX_PDF_TEXT_CHARS) -> PdfText:
    """The text of the PDF ``data``. Raises :class:`PdfTextError`."""
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):  # many PDFs are "encrypted" with an empty password
            raise PdfTextError("is protected by a password: open it, save a copy without one, and attach that")
        pages = len(reader.pages)
        title = _title(reader)
        parts: list[str] = []
        size = 0
        read = 0
        found = False  # any text at all
        for number, page in enumerate(reader.pages, start=1):
            text = _page_text(page, number).strip()
            found = found or bool(text)
            block = f"[Page {number}]\n{text}" if text else f"[Page {number}]"
            if parts and size + len(block) > max_chars:
                break
            parts.append(block[:max_chars])
            size += len(block) + 2
            read = number
    except PdfTextError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, RecursionError, NotImplementedError) as exc:
        # pypdf raises its own errors for most damage, and plain ones for some (a broken object, a missing key).
        logger.info("a PDF could not be read: %s", type(exc).__name__)
        raise PdfTextError(f"is not a PDF that can be read ({type(exc).__name__})") from None
    if not found:
        raise PdfTextError(
            "has no text in it (a scan, or pictures of pages): gpt-oss reads text only; run it through OCR first"
        )
    body = "\n\n".join(parts)
    if read < pages:
        body += f"\n\n[The text stops here: page {read} of {pages}. The rest is too long to read at once.]"
    return PdfText(body, pages, read, title)


def _page_text(page: object, number: int) -> str:
    try:
        return str(page.extract_text())  # type: ignore[attr-defined]
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.info("page %d of a PDF has no readable text: %s", number, type(exc).__name__)
        return ""


def _title(reader: PdfReader) -> str:
    try:
        title = reader.metadata.title if reader.metadata is not None else None
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError):
        return ""
    return " ".join(str(title).split()) if title else ""
