from __future__ import annotations

import asyncio
import json

import pytest

from gpt_oss_desktop.engine.tools.browser.fetcher import (
    DocumentKind,
    FetchError,
    FetchLimits,
    PageFetcher,
    check_host,
)
from tests.helpers.web_site import Route, Site

LOCAL = FetchLimits(allow_private_hosts=True, timeout_s=5)


def fetch(url: str, limits: FetchLimits = LOCAL):
    return asyncio.run(PageFetcher(limits).fetch(url))


def test_html_is_read_with_its_declared_charset(site: Site) -> None:
    site.routes["/latin"] = Route(
        body="<p>café</p>".encode("latin-1"), headers={"Content-Type": "text/html; charset=iso-8859-1"}
    )
    site.routes["/meta"] = Route(
        body='<meta charset="windows-1252"><p>naïve</p>'.encode("cp1252"), headers={"Content-Type": "text/html"}
    )
    latin = fetch(site.url("/latin"))
    assert latin.kind is DocumentKind.HTML and "café" in latin.text and not latin.truncated
    assert "naïve" in fetch(site.url("/meta")).text


def test_text_and_json_are_text_and_binaries_are_refused(site: Site) -> None:
    site.routes["/a.json"] = Route(body=json.dumps({"a": 1}).encode(), headers={"Content-Type": "application/json"})
    site.routes["/notes"] = Route(body=b"plain words", headers={})
    site.routes["/doc"] = Route(body=b"%PDF-1.7\x00\x01", headers={"Content-Type": "application/octet-stream"})
    site.routes["/photo"] = Route(body=b"\x89PNG\r\n", headers={"Content-Type": "image/png"})
    site.routes["/blob"] = Route(body=b"\x00\x01\x02", headers={})
    assert fetch(site.url("/a.json")).kind is DocumentKind.TEXT
    assert fetch(site.url("/notes")).text == "plain words"
    pdf = fetch(site.url("/doc"))  # known by its first bytes: a PDF, handed on as bytes
    assert pdf.kind is DocumentKind.PDF and pdf.data == b"%PDF-1.7\x00\x01" and pdf.text == ""
    with pytest.raises(FetchError, match="image/png, not a web page, text or a PDF"):
        fetch(site.url("/photo"))
    with pytest.raises(FetchError, match="binary data"):
        fetch(site.url("/blob"))


def test_a_pdf_may_be_larger_than_a_page_but_is_never_cut(site: Site) -> None:
    site.routes["/paper.pdf"] = Route(body=b"%PDF-1.4\n" + b"0" * 20_000, headers={"Content-Type": "application/pdf"})
    limits = FetchLimits(allow_private_hosts=True, max_bytes=1_000, max_pdf_bytes=30_000)
    assert len(fetch(site.url("/paper.pdf"), limits).data) == 20_009
    with pytest.raises(FetchError, match="is a PDF larger than 0 MiB"):
        fetch(site.url("/paper.pdf"), FetchLimits(allow_private_hosts=True, max_pdf_bytes=10_000))


def test_redirects_are_followed_a_few_times_and_errors_name_the_status(site: Site) -> None:
    site.routes["/old"] = Route(302, headers={"Location": "/new"})
    site.html("/new", "<p>moved</p>")
    fetched = fetch(site.url("/old"))
    assert fetched.url == site.url("/new") and "moved" in fetched.text
    site.routes["/loop"] = Route(301, headers={"Location": "/loop"})
    with pytest.raises(FetchError, match="redirected more than 2 times"):
        fetch(site.url("/loop"), FetchLimits(allow_private_hosts=True, max_redirects=2))
    with pytest.raises(FetchError, match="answered HTTP 404"):
        fetch(site.url("/missing"))


def test_a_long_page_is_cut_at_the_byte_limit(site: Site) -> None:
    site.routes["/big"] = Route(body=b"a" * 100_000, headers={"Content-Type": "text/plain"})
    fetched = fetch(site.url("/big"), FetchLimits(allow_private_hosts=True, max_bytes=10_000))
    assert fetched.truncated and len(fetched.text) == 10_000


def test_local_hosts_are_refused_unless_allowed(site: Site) -> None:
    site.html("/secret", "<p>router admin</p>")
    with pytest.raises(FetchError, match="on this computer or the local network"):
        fetch(site.url("/secret"), FetchLimits())
    assert site.requests == []  # refused before any request was made
    # a public page that redirects to a local one is refused at the redirect (checked per hop)
    for address in ("http://10.0.0.1/", "http://[::1]:80/", "http://[::ffff:127.0.0.1]/", "http://169.254.169.254/"):
        with pytest.raises(FetchError, match="local network"):
            asyncio.run(check_host(address, FetchLimits()))


def test_only_http_and_https_are_opened() -> None:
    for address in ("file:///etc/passwd", "ftp://example.com/x", "http:///nohost"):
        with pytest.raises(FetchError, match="Cannot open"):
            asyncio.run(check_host(address, LOCAL))


def test_a_host_that_does_not_exist_is_named() -> None:
    with pytest.raises(FetchError, match="was not found"):
        asyncio.run(check_host("https://no-such-host.invalid/", FetchLimits()))


def test_a_server_that_does_not_answer_in_time_is_a_fetch_error(site: Site) -> None:
    import socket

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts the connection, never answers
    try:
        with pytest.raises(FetchError, match=r"did not answer within 0\.3 seconds"):
            fetch(f"http://127.0.0.1:{silent.getsockname()[1]}/", FetchLimits(allow_private_hosts=True, timeout_s=0.3))
    finally:
        silent.close()


def test_behind_a_proxy_a_name_this_computer_cannot_resolve_is_left_to_the_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    asyncio.run(check_host("https://no-such-host.invalid/page", FetchLimits()))  # no error: the proxy resolves it
    with pytest.raises(FetchError, match="local network"):  # an address is still an address
        asyncio.run(check_host("https://127.0.0.1/", FetchLimits()))
    with pytest.raises(FetchError, match="was not found"):  # http goes direct: no proxy for it
        asyncio.run(check_host("http://no-such-host.invalid/page", FetchLimits()))
