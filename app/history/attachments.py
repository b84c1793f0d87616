"""Files attached to a user message, as the history keeps them and as the model reads them (no Qt, no database).

An attachment is kept whole with its message: its name (never the folder it came from), its text, the size of the
file it was read from and its token count. The model is sent no separate objects: it reads the message's text
followed by one block per file (:func:`message_text`), and the Markdown export writes the same blocks, so what was
sent is what is kept. The content goes in a fenced block whose fence is longer than any run of backticks in it, so a
file holding Markdown or code fences cannot close its block early.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from .tool_call_export import fenced

ATTACHED_FILE_LABEL: Final = "Attached file"
# A file extension short and plain enough to be a fence's info string (a syntax-highlighting hint to a reader, and
# to the model a reminder of the file's kind); anything else gets none, since a backtick in it would end the fence.
_LANGUAGE_HINT: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9+_-]{0,15}")


def clean_name(name: str) -> str:
    """A file name fit to stand on one line of the text the model reads: control characters (a newline, which a
    Linux file name may hold, would start a line of its own) become spaces, runs of spaces one, and any folder part
    is dropped. ValueError when nothing is left."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    flat = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch for ch in base)
    cleaned = " ".join(flat.split())
    if not cleaned:
        raise ValueError("an attached file needs a name")
    return cleaned


@dataclass(frozen=True, slots=True)
class Attachment:
    """One attached file.

    ``size`` is the file's size in bytes as it was read (in its own encoding, any byte-order mark included), which
    the text's length does not tell; ``tokens`` its text's length in tokens of the bundled tokenizer, counted once
    when it was attached (None: unknown, e.g. imported from an export that did not say).
    """

    name: str
    text: str
    size: int
    tokens: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.text, str):
            raise TypeError("an attached file's name and text must be strings")
        if self.name != clean_name(self.name):
            raise ValueError(f"not a clean file name: {self.name!r}")
        for label, value in (("size", self.size), ("tokens", self.tokens)):
            if value is None and label == "tokens":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"an attached file's {label} must be a whole number of at least 0, not {value!r}")

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"name": self.name, "text": self.text, "size": self.size}
        if self.tokens is not None:
            document["tokens"] = self.tokens
        return document

    @classmethod
    def from_json(cls, value: object, what: str = "attachment") -> Attachment:
        """An attachment from its JSON object (``name`` and ``text`` required; ``size`` defaults to the text's UTF-8
        length, ``tokens`` to unknown). TypeError or ValueError naming ``what`` when it is not one."""
        if not isinstance(value, Mapping):
            raise TypeError(f"{what} must be an object, not {type(value).__name__}")
        name, text = value.get("name"), value.get("text")
        if not isinstance(name, str) or not isinstance(text, str):
            raise ValueError(f"{what} needs a string 'name' and a string 'text'")
        size = value.get("size", len(text.encode("utf-8", "surrogatepass")))
        try:
            return cls(name, text, size, value.get("tokens"))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{what}: {exc}") from exc


def clean_attachments(value: Sequence[Any] | None, what: str = "attachments") -> tuple[Attachment, ...]:
    """Attachments given as Attachment objects or their JSON objects, in order. TypeError or ValueError naming
    what is wrong."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise TypeError(f"{what} must be a list, not {type(value).__name__}")
    return tuple(
        item if isinstance(item, Attachment) else Attachment.from_json(item, f"{what}[{index}]")
        for index, item in enumerate(value)
    )


def attachments_dumps(attachments: Sequence[Attachment]) -> str:
    # A list keeps the order the files were attached in, which is the order the model reads them.
    return json.dumps([a.to_json() for a in attachments], ensure_ascii=False, sort_keys=True)


def attachment_names(attachments: Sequence[Attachment]) -> str:
    """The files' names, a line each, as the history keeps them for search (schema.py, v5)."""
    return "\n".join(attachment.name for attachment in attachments)


def attachments_loads(text: str) -> tuple[Attachment, ...]:
    """The stored attachments of a message. Anything but a list of attachment objects raises ValueError (or
    TypeError): the files are part of the conversation, so a damaged value is reported, never read as "none"."""
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError(f"attachments must be a JSON list, not {type(value).__name__}")
    return clean_attachments(value)


def language_hint(name: str) -> str:
    """The fence's info string for a file called ``name``: its extension when plain ("py", "md"), else ''. A PDF's
    fence holds the text taken out of it, not PDF: no hint."""
    stem, dot, extension = name.rpartition(".")
    plain = dot and stem and _LANGUAGE_HINT.fullmatch(extension) and extension.lower() != "pdf"
    return extension.lower() if plain else ""


def attachment_block(attachment: Attachment) -> str:
    """One file as the model reads it: a line naming it, then its content in a fence nothing inside can close."""
    lines = [f"{ATTACHED_FILE_LABEL}: {attachment.name}", *fenced(attachment.text, language_hint(attachment.name))]
    return "\n".join(lines)


def message_text(text: str, attachments: Sequence[Attachment]) -> str:
    """A user message as the model reads it: the typed text, then each attached file's block, in order."""
    parts = [text] if text else []
    parts += [attachment_block(attachment) for attachment in attachments]
    return "\n\n".join(parts)
