"""Typed errors of the chat history store, so the GUI can tell a user what went wrong and what to do."""

from __future__ import annotations

from pathlib import Path


class HistoryError(Exception):
    """Base class of every error the history store raises.

    Attributes:
        path: the database (or import) file at fault, when there is one.
        reason: what went wrong, without the path (for a message that names the file separately).
    """

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.reason = message
        super().__init__(f"{path}: {message}" if path is not None else message)


class CorruptDatabaseError(HistoryError):
    """The file exists but is not a readable SQLite database. The file is left untouched."""


class ForeignDatabaseError(HistoryError):
    """A valid SQLite database that was not written by gpt-oss desktop; we refuse to add tables to it."""


class SchemaTooNewError(HistoryError):
    """The database was written by a newer version of the app; opening it read-write could corrupt it.

    Attributes:
        found: the schema version stored in the file.
        supported: the newest schema version this build understands.
    """

    def __init__(self, path: Path | str, found: int, supported: int) -> None:
        self.found = found
        self.supported = supported
        super().__init__(
            f"chat history has schema version {found}, but this version of gpt-oss desktop only understands "
            f"up to {supported}; update the app (the file was not modified)",
            path,
        )


class ChatNotFoundError(HistoryError, LookupError):
    """No chat (or message) with the given id."""


class ImportFormatError(HistoryError, ValueError):
    """A JSON export that cannot be imported (not JSON, wrong format, missing or mistyped fields)."""


class StoreClosedError(HistoryError):
    """The store was used after close()."""


class SearchCancelledError(HistoryError):
    """A search was cancelled (a newer query replaced it) before it finished."""
