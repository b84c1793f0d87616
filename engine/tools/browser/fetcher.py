"""Fetching one web page for the browser tool, within limits a page the model asked for cannot break.

The model chooses the URLs, and the text of any page it reads can ask it to open another: so a fetch goes only to
``http``/``https``, follows at most a few redirects, reads at most a few MiB, gives up after a time limit, and by
default refuses any host that resolves to this computer or the local network (a page must not be able to make the
model read a router's admin page or a service on localhost and carry it off in a later request). The user can allow
local hosts (an intranet wiki) in the tool's settings.

A PDF comes back as its bytes (the session takes its text out, engine/pdf_text.py). What cannot be read as text (an
image, a binary) is a :class:`FetchError` that says so; its message goes back to the model as the call's result.
"""

from __future__ import annotations

import asyncio
import codecs
import enum
import ipaddress
import logging
import re
import socket
import urllib.request
from dataclasses import dataclass
from typing import Final
from urllib.parse import urljoin, urlsplit

import httpx2

from gpt_oss_desktop.engine.pdf_text import is_pdf

logger = logging.getLogger(__name__)

USER_AGENT: Final = "Mozilla/5.0 (compatible; gpt-oss-desktop browser tool)"
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_TEXT_TYPES: Final = frozenset({"application/json", "application/xml", "application/javascript", "application/x-yaml"})
# Longer addresses are refused: no page needs one, and each view's header repeats it unwrapped.
MAX_URL_CHARS: Final = 2048
_PDF_TYPE: Final = "application/pdf"
_META_CHARSET: Final = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class FetchError(Exception):
    """A page that could not be fetched or read; the message is written for the model (and shown on the call's card)."""


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Args:
    timeout_s: the most one request may take, connecting and reading.
    max_bytes: the most of a page's body that is read (the rest is left unread, and the page says it was cut).
    max_pdf_bytes: the same for a PDF, which cannot be read in part (its index is at its end).
    max_redirects: redirects followed before giving up.
    allow_private_hosts: fetch from hosts on this computer or the local network too.
    """

    timeout_s: float = 20.0
    max_bytes: int = 4 * 1024 * 1024
    max_pdf_bytes: int = 32 * 1024 * 1024
    max_redirects: int = 5
    allow_private_hosts: bool = False


class DocumentKind(enum.StrEnum):
    HTML = "html"
    TEXT = "text"
    PDF = "pdf"


@dataclass(frozen=True, slots=True)
class FetchedDocument:
    """A page's body, where it ended up after redirects, and its kind: ``text`` for HTML and text, ``data`` (the
    bytes) for a PDF."""

    url: str
    text: str
    kind: DocumentKind
    truncated: bool = False
    data: bytes = b""


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id (fe80::1%eth0) is not part of the address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_host(url: str, limits: FetchLimits) -> None:
    """Raise :class:`FetchError` unless ``url`` is http(s) to a host this fetcher may reach."""
    if len(url) > MAX_URL_CHARS:
        raise FetchError(f"Cannot open an address of {len(url):,} characters (the most is {MAX_URL_CHARS:,}).")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"Cannot open `{url}`: only http and https addresses can be opened.")
    host = parts.hostname
    if not host:
        raise FetchError(f"Cannot open `{url}`: the address names no host.")
    if limits.allow_private_hosts:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise FetchError(f"Cannot open `{url}`: the port is not a number.") from None
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        if _behind_proxy(parts.scheme, host):
            # Behind a proxy (HTTP_PROXY/HTTPS_PROXY) this computer may not resolve outside names at all: the proxy
            # does, and reaches what it is set up to reach. A name, not an address, so nothing local is named here.
            return
        raise FetchError(f"Cannot open `{url}`: the host `{host}` was not found ({exc}).") from None
    if not infos or not all(_is_public(str(info[4][0])) for info in infos):
        raise FetchError(
            f"Cannot open `{url}`: `{host}` is on this computer or the local network, which the browser does not "
            "open (the user can allow it in the tool's settings)."
        )


def _behind_proxy(scheme: str, host: str) -> bool:
    """Whether requests for ``host`` go through a proxy from the environment (as httpx2 sends them)."""
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return False
    try:
        ipaddress.ip_address(host.strip("[]"))
        return False  # an address literal is checked as one, proxy or not
    except ValueError:
        pass
    return bool(urllib.request.getproxies().get(scheme)) and not urllib.request.proxy_bypass(host)


def _charset(content_type: str, head: bytes) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    match = _META_CHARSET.search(head[:4096])
    return match.group(1).decode("ascii") if match else "utf-8"


def _decode(body: bytes, content_type: str) -> str:
    charset = _charset(content_type, body)
    try:
        codecs.lookup(charset)
    except LookupError:
        charset = "utf-8"
    return body.decode(charset, errors="replace")


def _media(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _kind(content_type: str, body: bytes, url: str) -> DocumentKind:
    """What the body is; :class:`FetchError` for anything the browser cannot read."""
    media = _media(content_type)
    if media in _HTML_TYPES:
        return DocumentKind.HTML
    if media == _PDF_TYPE or (media in ("", "application/octet-stream") and is_pdf(body)):
        return DocumentKind.PDF
    if media.startswith("text/") or media in _TEXT_TYPES or media.endswith(("+json", "+xml")):
        return DocumentKind.TEXT
    if not media:
        # No type given: HTML if it looks like it, text if it has no NUL bytes, else something else.
        start = body[:512].lstrip().lower()
        if start.startswith((b"<!doctype html", b"<html")):
            return DocumentKind.HTML
        if b"\x00" not in body[:8192]:
            return DocumentKind.TEXT
    raise FetchError(f"`{url}` is {media or 'binary data'}, not a web page, text or a PDF: the browser cannot read it.")


class PageFetcher:
    """Fetches pages for one browser session (one answer's tool calls).

    Args:
        limits: see :class:`FetchLimits`.
        transport: an httpx2 transport to send requests through (None: the network, honouring the system's proxy
            settings).
    """

    def __init__(self, limits: FetchLimits | None = None, *, transport: httpx2.AsyncBaseTransport | None = None):
        self.limits = limits or FetchLimits()
        self._transport = transport

    def client(self) -> httpx2.AsyncClient:
        """A client with this fetcher's time limit and user agent (the search providers use it too)."""
        return httpx2.AsyncClient(
            timeout=self.limits.timeout_s,
            follow_redirects=False,  # followed by hand: each hop's host is checked
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"},
            transport=self._transport,
        )

    async def fetch(self, url: str) -> FetchedDocument:
        """The page at ``url``; :class:`FetchError` with a reason the model can act on when it cannot be read."""
        try:
            async with self.client() as client:
                return await self._fetch(client, url)
        except httpx2.TimeoutException:
            raise FetchError(f"`{url}` did not answer within {self.limits.timeout_s:g} seconds.") from None
        except httpx2.HTTPError as exc:
            raise FetchError(f"Could not fetch `{url}`: {exc or type(exc).__name__}.") from None

    async def _fetch(self, client: httpx2.AsyncClient, url: str) -> FetchedDocument:
        for _hop in range(self.limits.max_redirects + 1):
            await check_host(url, self.limits)
            async with client.stream("GET", url) as response:
                if response.is_redirect and "location" in response.headers:
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code >= 400:
                    raise FetchError(f"`{url}` answered HTTP {response.status_code} {response.reason_phrase}.")
                content_type = response.headers.get("content-type", "")
                pdf_named = _media(content_type) == _PDF_TYPE or url.lower().split("?", 1)[0].endswith(".pdf")
                body, truncated = await self._read(
                    response, self.limits.max_pdf_bytes if pdf_named else self.limits.max_bytes
                )
                kind = _kind(content_type, body, url)
                if kind is DocumentKind.PDF:
                    if truncated:
                        raise FetchError(f"`{url}` is a PDF larger than {self.limits.max_pdf_bytes >> 20} MiB.")
                    return FetchedDocument(str(response.url), "", kind, data=body)
                return FetchedDocument(str(response.url), _decode(body, content_type), kind, truncated)
        raise FetchError(f"`{url}` redirected more than {self.limits.max_redirects} times.")

    async def _read(self, response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                logger.info("page cut at %d bytes", limit)
                return b"".join(chunks)[:limit], True
        return b"".join(chunks), False
