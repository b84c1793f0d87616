"""PDF text with the real pypdf over PDFs written byte by byte (tests/helpers/pdf_files.py)."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader, PdfWriter

from gpt_oss_desktop.engine.pdf_text import PdfTextError, is_pdf, pdf_text
from tests.helpers.pdf_files import pdf_bytes


def test_each_page_is_headed_and_the_title_is_read() -> None:
    data = pdf_bytes([["Tides come twice a day.", "The Moon (mostly)."], [], ["Page three."]], title="On  Tides")
    assert is_pdf(data) and not is_pdf(b"plain text %PDF- later" + b" " * 2000)
    got = pdf_text(data)
    assert got.text == "[Page 1]\nTides come twice a day.\nThe Moon (mostly).\n\n[Page 2]\n\n[Page 3]\nPage three."
    assert (got.pages, got.pages_read, got.title, got.cut) == (3, 3, "On Tides", False)


def test_a_long_pdf_is_cut_between_pages_and_says_so() -> None:
    data = pdf_bytes([[f"Line {i} of page {p}." for i in range(40)] for p in range(1, 11)])
    got = pdf_text(data, max_chars=2000)
    assert got.cut and 1 <= got.pages_read < 10
    assert got.text.endswith(
        f"[The text stops here: page {got.pages_read} of 10. The rest is too long to read at once.]"
    )
    assert f"[Page {got.pages_read + 1}]" not in got.text


def test_scans_locked_and_broken_files_are_refused_with_a_reason() -> None:
    with pytest.raises(PdfTextError, match="has no text in it"):
        pdf_text(pdf_bytes([[], []]))
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([["secret"]]))))
    writer.encrypt("hunter2", algorithm="RC4-128")
    locked = io.BytesIO()
    writer.write(locked)
    with pytest.raises(PdfTextError, match="protected by a password"):
        pdf_text(locked.getvalue())
    open_lock = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([["readable"]]))))
    open_lock.encrypt("", algorithm="RC4-128")  # "encrypted" with an empty password: opens as is
    empty = io.BytesIO()
    open_lock.write(empty)
    assert "readable" in pdf_text(empty.getvalue()).text
    with pytest.raises(PdfTextError, match="is not a PDF that can be read"):
        pdf_text(b"%PDF-1.4\n" + b"garbage" * 100)
    with pytest.raises(PdfTextError, match="is not a PDF that can be read"):
        pdf_text(pdf_bytes([["x"]])[:200])
