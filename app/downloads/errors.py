"""Typed download errors with messages a user can act on, and the mapping from what the hub client raises.

Every :class:`DownloadError` is a complete sentence (``str(error)``) plus ``advice``. :func:`classify_error` walks
an exception's cause chain, because huggingface_hub often wraps the real reason (a DNS failure inside a
``LocalEntryNotFoundError``, an ``OfflineModeIsEnabled`` inside another error).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import httpx2
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

logger = logging.getLogger(__name__)

StopReason = Literal["pause", "cancel"]

_DNS_HINTS = (
    "name or service not known",
    "temporary failure in name resolution",
    "nodename nor servname",
    "getaddrinfo failed",
    "no address associated",
    "name resolution",
)


class DownloadError(Exception):
    """A download, verification or registry problem, worded for the user.

    Attributes:
        advice: what the user can do about it (may be empty).
        transient: a network hiccup worth retrying automatically (with backoff).
    """

    transient = False
    default_advice = ""

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = self.default_advice if advice is None else advice

    def __str__(self) -> str:
        return self.message


class OfflineError(DownloadError):
    default_advice = "Unset HF_HUB_OFFLINE to download, or choose a location that already holds the model."


class NetworkError(DownloadError):
    """No network, a DNS failure, a refused or timed-out connection."""

    transient = True
    default_advice = "Check your internet connection (and HF_ENDPOINT, if you set it), then press Retry."


class AuthRequiredError(DownloadError):
    """401/403: the repo is gated or private, or the token was refused."""

    default_advice = (
        "Paste a Hugging Face access token (huggingface.co/settings/tokens). For a gated model, accept its licence "
        "on the model page first."
    )


class NotFoundError(DownloadError):
    """404: no such repo, revision or file."""

    default_advice = "Check the model name and HF_ENDPOINT. If the repo is private, a token may be needed."


class ConnectionDroppedError(DownloadError):
    """The server closed or reset the connection in the middle of a file."""

    transient = True
    default_advice = "The part already downloaded is kept. Press Resume to continue from where it stopped."


class ServerError(DownloadError):
    """5xx / 429 from the Hub."""

    transient = True
    default_advice = "The Hub is busy or down. The part already downloaded is kept; try again in a few minutes."


class NotEnoughSpaceError(DownloadError):
    """Refused before starting: the target has less free space than the download needs plus a margin."""

    default_advice = "Free some disk space, or choose another location."

    def __init__(self, needed: int, free: int, where: Path) -> None:
        super().__init__(
            f"Not enough free disk space at {where}: the download needs {human_bytes(needed)} "
            f"(including a safety margin) but only {human_bytes(free)} is free."
        )
        self.needed = needed
        self.free = free
        self.where = where


class DiskFullError(DownloadError):
    """The disk filled up during the download."""

    default_advice = "Free some disk space, then press Resume: the part already downloaded is kept."


class PermissionDeniedError(DownloadError):
    default_advice = "Choose a folder you can write to, or fix its permissions."


class VerificationError(DownloadError):
    """A file's size or SHA-256 does not match the Hub's record, even after fetching it again."""

    default_advice = "Try again later; if it keeps failing, the files on the Hub or your disk may be damaged."


class PlanError(DownloadError):
    """The repo does not hold the files the engine needs (or they changed while downloading)."""


class RegistryError(DownloadError):
    """The list of installed models cannot be read or written."""


class ImportFailedError(DownloadError):
    """A folder that the engine's checkpoint validator rejects."""

    default_advice = "Choose a folder holding a complete gpt-oss checkpoint (original/ or Hugging Face layout)."


class TransferStopped(Exception):  # control flow, not an error
    """Raised inside a transfer when the user pauses or cancels; partial files are kept."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason: StopReason = reason


def human_bytes(n: float) -> str:
    """1.2 GB style (decimal units, as the Hub and disk vendors show sizes)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return int(exc.response.status_code)
    if isinstance(exc, httpx2.HTTPStatusError):
        return int(exc.response.status_code)
    return None


def classify_error(exc: BaseException, *, what: str = "the model", path: Path | None = None) -> DownloadError:
    """The user-facing error for ``exc`` raised while fetching ``what`` (a repo or file name) into ``path``."""
    if isinstance(exc, DownloadError):
        return exc
    for cause in _chain(exc):
        found = _classify_one(cause, what, path)
        if found is not None:
            if found is not exc:
                found.__cause__ = exc
            return found
    logger.warning("unclassified download error for %s: %r", what, exc)
    error = DownloadError(f"Downloading {what} failed: {exc}")
    error.__cause__ = exc
    return error


def _classify_one(exc: BaseException, what: str, path: Path | None) -> DownloadError | None:
    if isinstance(exc, OfflineModeIsEnabled):
        return OfflineError(f"Offline mode is on (HF_HUB_OFFLINE): {what} cannot be downloaded.")
    status = _status(exc)
    if isinstance(exc, GatedRepoError) or status in (401, 403):
        return AuthRequiredError(f"The Hub refused access to {what} (HTTP {status or 401}): it needs a valid token.")
    if isinstance(exc, RevisionNotFoundError):
        return NotFoundError(f"{what}: that revision does not exist on the Hub (HTTP 404).")
    if isinstance(exc, RepositoryNotFoundError):
        return NotFoundError(f"{what} was not found on the Hub (HTTP 404).")
    if isinstance(exc, EntryNotFoundError) and status == 404:
        return NotFoundError(f"{what} was not found on the Hub (HTTP 404).")
    if status == 404:
        return NotFoundError(f"{what} was not found on the Hub (HTTP 404).")
    if status is not None and (status >= 500 or status in (408, 429)):
        return ServerError(f"The Hub answered HTTP {status} while fetching {what}.")
    if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
        return ConnectionDroppedError(f"The server closed the connection in the middle of {what}.")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        # http_get's own check: the body ended short of Content-Length
        return ConnectionDroppedError(f"The server closed the connection in the middle of {what}.")
    if isinstance(exc, httpx2.ConnectError):
        text = str(exc).lower()
        if any(h in text for h in _DNS_HINTS):
            return NetworkError(f"Cannot reach the Hub: the DNS lookup failed ({exc}). Are you online?")
        return NetworkError(f"Cannot reach the Hub: no network connection ({exc}).")
    if isinstance(exc, httpx2.TimeoutException):
        return NetworkError(f"The connection to the Hub timed out while fetching {what}.")
    if isinstance(exc, httpx2.TransportError):
        return NetworkError(f"Network error while fetching {what}: {exc}.")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" at {path}" if path is not None else ""
        return DiskFullError(f"The disk is full{where}: {what} could not be written.")
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        target = getattr(exc, "filename", None) or path
        return PermissionDeniedError(f"Permission denied: cannot write {target}.")
    return None
