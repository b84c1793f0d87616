"""A local Hugging Face Hub for tests: the real ``huggingface_hub`` client talks to it over HTTP.

It answers the endpoints the client needs to plan, download, resume and verify (docs/setup-notes.md):

- ``GET /api/models/<repo>[/revision/<rev>]`` (``model_info``, with per-file size, git blob id and LFS sha256),
- ``GET /api/models/<repo>/tree/<rev>[/<path>]`` and ``POST /api/models/<repo>/paths-info/<rev>``,
- ``HEAD/GET /<repo>/resolve/<rev>/<file>``: small files are served directly (``ETag`` = git blob id); LFS files
  answer with a 302 to a second origin, the "CDN" (``127.0.0.2``, same port), carrying ``X-Repo-Commit``,
  ``X-Linked-Etag`` (the sha256) and ``X-Linked-Size`` as the real Hub does, so the client strips the token and
  downloads from the ``Location`` it was given. Every file GET honours ``Range`` (206 + ``Content-Range``).

Faults are injected per file and consumed in order (:class:`Fault`): close the connection after N bytes (the client
sees an incomplete body), reset it (a TCP RST: the client sees a read error), flip one byte of the body, or answer
an HTTP status. ``require_token`` makes every Hub (not CDN) request without ``Authorization: Bearer <token>``
answer 401 GatedRepo, as the Hub does for gated repos. Every request is logged in :attr:`HubServer.requests`.

The client reads ``HF_HUB_OFFLINE`` and ``HF_ENDPOINT`` when it is imported, and ``tests/conftest.py`` sets
``HF_HUB_OFFLINE=1`` for the whole suite: a test that wants the network patches
``huggingface_hub.constants.HF_HUB_OFFLINE`` to False (the client checks that attribute on every request) and passes
the server's URL as ``endpoint=`` explicitly (see the ``online_hub`` fixture in tests/app/downloads/conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

HUB_HOST = "127.0.0.1"
CDN_HOST = "127.0.0.2"  # another origin on the loopback interface: the client treats it like a real CDN
LFS_POINTER_SIZE = 134
_SEND_CHUNK = 1 << 20
RESET_DELAY_SECONDS = 0.3


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file's bytes (what the Hub reports as ``blobId`` / ``oid``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class HostedFile:
    """One file of a hosted repo. LFS files are streamed from ``source`` on disk; small files live in memory."""

    path: str
    size: int
    sha256: str
    blob_id: str
    lfs: bool
    source: Path | None = None
    data: bytes | None = None

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """Bytes ``[start, end)`` in chunks."""
        if self.data is not None:
            yield self.data[start:end]
            return
        assert self.source is not None
        with self.source.open("rb") as f:
            f.seek(start)
            left = end - start
            while left > 0:
                chunk = f.read(min(_SEND_CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                yield chunk

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "oid": self.blob_id, "size": self.size, "path": self.path}
        if self.lfs:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": LFS_POINTER_SIZE}
        return entry

    def sibling(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": self.path, "size": self.size, "blobId": self.blob_id}
        if self.lfs:
            entry["lfs"] = {"sha256": self.sha256, "size": self.size, "pointerSize": LFS_POINTER_SIZE}
        return entry


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def hosted_file(path: str, source: Path, *, lfs: bool | None = None) -> HostedFile:
    """Host ``source`` as ``path``; ``.safetensors`` files (or ``lfs=True``) are LFS files, like on the Hub."""
    is_lfs = path.endswith(".safetensors") if lfs is None else lfs
    size = source.stat().st_size
    if is_lfs:
        # The git object of an LFS file is its pointer; any stable id will do for the client.
        pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{_sha256_of(source)}\nsize {size}\n"
        return HostedFile(path, size, _sha256_of(source), git_blob_sha1(pointer.encode()), True, source=source)
    data = source.read_bytes()
    return HostedFile(path, size, hashlib.sha256(data).hexdigest(), git_blob_sha1(data), False, data=data)


@dataclass
class HostedRepo:
    """A model repo at one commit."""

    repo_id: str
    files: dict[str, HostedFile]
    commit: str = "0123456789abcdef0123456789abcdef01234567"

    @classmethod
    def from_folder(cls, repo_id: str, folder: Path, prefix: str = "original/", **kwargs: Any) -> HostedRepo:
        """Every file under ``folder`` as ``prefix + relative path`` (e.g. a checkpoint as ``original/...``)."""
        files = {}
        for source in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = prefix + source.relative_to(folder).as_posix()
            files[name] = hosted_file(name, source)
        return cls(repo_id, files, **kwargs)

    def add(self, file: HostedFile) -> None:
        self.files[file.path] = file


FaultKind = Literal["cut", "reset", "corrupt", "status"]


@dataclass
class Fault:
    """A fault on the next ``times`` GETs of ``path`` (any file when None).

    - ``cut``: send ``after_bytes`` of the body, then close the connection cleanly (the body is short);
    - ``reset``: send ``after_bytes``, then reset the connection (RST);
    - ``corrupt``: serve the body with the byte at offset ``after_bytes`` inverted;
    - ``status``: answer ``status`` with no body (e.g. 503, 404).
    """

    kind: FaultKind
    path: str | None = None
    after_bytes: int = 0
    status: int = 503
    times: int = 1


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    origin: Literal["hub", "cdn"]
    path: str
    headers: dict[str, str]

    @property
    def range_start(self) -> int | None:
        m = re.match(r"bytes=(\d+)-", self.headers.get("range", ""))
        return int(m.group(1)) if m else None


@dataclass
class _State:
    repos: dict[str, HostedRepo]
    require_token: str | None = None
    chunk_delay: float = 0.0  # seconds to wait after each 1 MiB sent: a slow network
    faults: list[Fault] = field(default_factory=list)
    requests: list[LoggedRequest] = field(default_factory=list)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.path in (None, path):
                    fault.times -= 1
                    return fault
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    # -- plumbing ---------------------------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.server.origin, format % args)

    @property
    def state(self) -> _State:
        return self.server.state

    def _log(self) -> None:
        with self.state.lock:
            self.state.requests.append(
                LoggedRequest(
                    self.command, self.server.origin, self.path, {k.lower(): v for k, v in self.headers.items()}
                )
            )

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"X-Error-Code": code, "X-Error-Message": message, **(extra or {})}
        self._send(status, json.dumps({"error": message}).encode(), {"Content-Type": "application/json", **headers})

    def _authorised(self) -> bool:
        token = self.state.require_token
        if token is None or self.server.origin == "cdn":
            return True
        if self.headers.get("Authorization") == f"Bearer {token}":
            return True
        self._error(401, "GatedRepo", "Access to this model is restricted. You must be authenticated to access it.")
        return False

    # -- routing ----------------------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        self._log()
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if self.server.origin == "cdn":
            m = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
            file = self._file_by_sha(m.group(1)) if m else None
            if file is None:
                self._error(404, "EntryNotFound", "no such object")
            else:
                self._serve_file(file, {})
            return
        if not self._authorised():
            return
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path):
            self._model_info(m.group(1), m.group(2))
        elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path):
            self._tree(m.group(1), m.group(2), m.group(3) or "", urllib.parse.parse_qs(url.query))
        elif m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/paths-info/([^/]+)", path):
            self._paths_info(m.group(1), m.group(2))
        elif m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            self._resolve(m.group(1), m.group(2), m.group(3))
        else:
            self._error(404, "NotFound", f"no route for {path}")

    def _repo(self, repo_id: str, revision: str | None) -> HostedRepo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if revision not in (None, "main", repo.commit):
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return None
        return repo

    def _file_by_sha(self, sha: str) -> HostedFile | None:
        for repo in self.state.repos.values():
            for file in repo.files.values():
                if file.lfs and file.sha256 == sha:
                    return file
        return None

    # -- API endpoints ----------------------------------------------------------------------------------------

    def _model_info(self, repo_id: str, revision: str | None) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        self._json(
            {
                "_id": repo.commit[:24],
                "id": repo.repo_id,
                "modelId": repo.repo_id,
                "sha": repo.commit,
                "private": False,
                "gated": "manual" if self.state.require_token else False,
                "siblings": [f.sibling() for f in repo.files.values()],
            }
        )

    def _tree(self, repo_id: str, revision: str, prefix: str, query: dict[str, list[str]]) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        base = prefix.rstrip("/") + "/" if prefix else ""
        entries: list[dict[str, Any]] = []
        folders: set[str] = set()
        for name, file in repo.files.items():
            if not name.startswith(base):
                continue
            rest = name[len(base) :]
            if "/" in rest and not recursive:
                folders.add(base + rest.split("/", 1)[0])
            else:
                entries.append(file.tree_entry())
        entries.extend({"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(folders))
        self._json(entries)

    def _paths_info(self, repo_id: str, revision: str) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        wanted = form.get("paths", [])
        self._json([repo.files[p].tree_entry() for p in wanted if p in repo.files])

    # -- file endpoints ---------------------------------------------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        file = repo.files.get(filename)
        commit = {"X-Repo-Commit": repo.commit}
        if file is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on main", commit)
            return
        if file.lfs:
            cdn = f"http://{CDN_HOST}:{self.server.server_address[1]}/cdn/{file.sha256}"
            self._send(
                302,
                headers={
                    **commit,
                    "Location": cdn,
                    "ETag": f'"{file.blob_id}"',
                    "X-Linked-Etag": f'"{file.sha256}"',
                    "X-Linked-Size": str(file.size),
                },
            )
            return
        self._serve_file(file, {**commit, "ETag": f'"{file.blob_id}"'})

    def _serve_file(self, file: HostedFile, headers: dict[str, str]) -> None:
        start, end = 0, file.size
        status = 200
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m:
            start = int(m.group(1))
            end = int(m.group(2)) + 1 if m.group(2) else file.size
            if start >= file.size:
                self._send(416, headers={"Content-Range": f"bytes */{file.size}"})
                return
            status = 206
            headers = {**headers, "Content-Range": f"bytes {start}-{end - 1}/{file.size}"}
        fault = self.state.take_fault(file.path) if self.command == "GET" else None
        if fault is not None and fault.kind == "status":
            self._error(fault.status, "Injected", f"injected {fault.status}")
            return
        self.send_response(status)
        for key, value in {**headers, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        limit = end - start
        if fault is not None and fault.kind in ("cut", "reset"):
            limit = min(limit, max(0, fault.after_bytes - start))
        for chunk in file.read(start, end):
            if (
                fault is not None
                and fault.kind == "corrupt"
                and start + sent <= fault.after_bytes < start + sent + len(chunk)
            ):
                at = fault.after_bytes - start - sent
                chunk = chunk[:at] + bytes([chunk[at] ^ 0xFF]) + chunk[at + 1 :]
            chunk = chunk[: max(0, limit - sent)]
            if not chunk:
                break
            try:
                self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
            sent += len(chunk)
            if self.state.chunk_delay:
                time.sleep(self.state.chunk_delay)
        with self.state.lock:
            self.state.bytes_sent[file.path] = self.state.bytes_sent.get(file.path, 0) + sent
        if fault is not None and fault.kind in ("cut", "reset"):
            self.wfile.flush()
            if fault.kind == "reset":
                # A reset discards whatever the client has not read yet: give it a moment to read what was sent,
                # as a real connection dropping mid-transfer would have delivered it long before.
                time.sleep(RESET_DELAY_SECONDS)
                # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: _State, origin: Literal["hub", "cdn"]) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.origin = origin


class HubServer:
    """The Hub (on ``127.0.0.1``) and its CDN (``127.0.0.2``, same port), each serving in a thread."""

    def __init__(self, *repos: HostedRepo, require_token: str | None = None) -> None:
        self.state = _State({r.repo_id: r for r in repos}, require_token=require_token)
        self._hub = _Server((HUB_HOST, 0), self.state, "hub")
        port = self._hub.server_address[1]
        self._cdn = _Server((CDN_HOST, port), self.state, "cdn")
        self.url = f"http://{HUB_HOST}:{port}"
        self._threads = [
            threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name=s.origin)
            for s in (self._hub, self._cdn)
        ]

        self._started = False
        self._stopped = False

    def __enter__(self) -> HubServer:
        for t in self._threads:
            t.start()
        self._started = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop serving and free the port (safe to call twice)."""
        if self._stopped:
            return
        self._stopped = True
        for s in (self._hub, self._cdn):
            if self._started:
                s.shutdown()  # waits for serve_forever to return: only valid once it ran
            s.server_close()

    # -- control and inspection -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        with self.state.lock:
            return list(self.state.requests)

    def add_fault(self, fault: Fault) -> None:
        with self.state.lock:
            self.state.faults.append(fault)

    def require_token(self, token: str | None) -> None:
        self.state.require_token = token

    def throttle(self, seconds_per_mib: float) -> None:
        self.state.chunk_delay = seconds_per_mib

    def bytes_sent(self, path: str) -> int:
        with self.state.lock:
            return self.state.bytes_sent.get(path, 0)

    def file_gets(self, path: str) -> list[LoggedRequest]:
        """GETs that fetched ``path``'s bytes (from the Hub or, for LFS files, the CDN)."""
        repo_file = next(f for r in self.state.repos.values() for f in r.files.values() if f.path == path)
        return [
            r
            for r in self.requests
            if r.method == "GET"
            and (
                (r.origin == "cdn" and r.path.endswith(repo_file.sha256))
                or (r.origin == "hub" and "/resolve/" in r.path and urllib.parse.unquote(r.path).endswith("/" + path))
            )
        ]
