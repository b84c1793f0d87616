"""Speed and ETA, event throttling, the tqdm bridge, hashing, and what each failure is called."""

from __future__ import annotations

import errno
import hashlib
import subprocess
from pathlib import Path

import httpx2
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

from gpt_oss_desktop.app.downloads import Progress, TransferStopped
from gpt_oss_desktop.app.downloads.errors import (
    ConnectionDroppedError,
    DiskFullError,
    NetworkError,
    OfflineError,
    PermissionDeniedError,
    classify_error,
    human_bytes,
)
from gpt_oss_desktop.app.downloads.progress import ProgressTracker, StopSignal, bridge_bar_class
from gpt_oss_desktop.app.downloads.verify import Expected, hash_file, mismatch


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_speed_and_eta_over_a_sliding_window() -> None:
    clock = Clock()
    events: list[Progress] = []
    tracker = ProgressTracker("download", 1000, events.append, clock=clock)  # type: ignore[arg-type]
    tracker.start_file("a", 1000, already=200)  # found on disk: counts as done, not as speed
    assert events[-1].done == 200 and events[-1].bytes_per_second is None and events[-1].eta_seconds is None
    for _ in range(4):
        clock.now += 1
        tracker.add(100)
    last = events[-1]
    assert last.done == 600 and last.file_done == 600
    assert last.bytes_per_second == pytest.approx(100) and last.eta_seconds == pytest.approx(4)


def test_events_are_throttled_but_file_boundaries_always_reported() -> None:
    clock = Clock()
    events: list[Progress] = []
    tracker = ProgressTracker("verify", 10_000, events.append, clock=clock)  # type: ignore[arg-type]
    tracker.start_file("a", 10_000)
    for _ in range(50):
        clock.now += 0.01
        tracker.add(100)
    tracker.end_file()
    assert 5 <= len(events) <= 8  # 0.5 s of updates at 10 a second, plus start and end
    assert events[-1].done == 5000


def test_the_bridge_bar_forwards_updates_and_can_stop_a_transfer() -> None:
    seen: list[int] = []
    stop = StopSignal()

    def on_bytes(n: int) -> None:
        stop.check()
        seen.append(n)

    bar_class = bridge_bar_class(on_bytes)
    # how huggingface_hub creates a bar for a non-hub tqdm class
    with bar_class(unit="B", unit_scale=True, total=10, initial=3, desc="x") as bar:
        bar.update(4)
        bar.update(-2)  # the client rolls back when a server ignored Range
        stop.request("pause")
        with pytest.raises(TransferStopped, match="pause"):
            bar.update(1)
    assert seen == [4, -2]
    stop.request("cancel")
    stop.request("pause")  # cancel wins
    assert stop.reason == "cancel"


def test_hashes_match_sha256_and_git(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello gpt-oss\n" * 1000)
    assert hash_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    subprocess.run(["git", "--version"], check=True, capture_output=True)
    git_id = subprocess.run(["git", "hash-object", str(path)], check=True, capture_output=True, text=True).stdout
    assert hash_file(path, git_blob=True) == git_id.strip()
    assert mismatch(path, Expected(path.stat().st_size, git_sha1=git_id.strip())) is None
    assert mismatch(path, Expected(5, sha256="0" * 64)) == f"size {path.stat().st_size} bytes, expected 5"
    assert mismatch(tmp_path / "nope", Expected(5)) == "the file is missing"


@pytest.mark.parametrize(
    ("exc", "kind", "text"),
    [
        (OfflineModeIsEnabled("offline"), OfflineError, "Offline mode is on"),
        (httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"), NetworkError, "DNS lookup failed"),
        (httpx2.ConnectError("[Errno 111] Connection refused"), NetworkError, "no network connection"),
        (httpx2.ReadTimeout("timed out"), NetworkError, "timed out"),
        (httpx2.RemoteProtocolError("peer closed connection"), ConnectionDroppedError, "closed the connection"),
        (OSError("Consistency check failed: file should be of size 9"), ConnectionDroppedError, "middle of"),
        (OSError(errno.ENOSPC, "No space left on device"), DiskFullError, "The disk is full"),
        (PermissionError(errno.EACCES, "Permission denied", "/m/x"), PermissionDeniedError, "cannot write /m/x"),
    ],
)
def test_classification(exc: Exception, kind: type, text: str) -> None:
    error = classify_error(exc, what="original/model.safetensors", path=Path("/m"))
    assert isinstance(error, kind) and text in str(error) and error.advice


def test_classification_looks_through_the_clients_wrappers() -> None:
    try:
        try:
            raise httpx2.ConnectError("[Errno -2] Name or service not known")
        except httpx2.ConnectError as inner:
            raise LocalEntryNotFoundError("cannot find the requested files in the local cache") from inner
    except LocalEntryNotFoundError as outer:
        error = classify_error(outer)
    assert isinstance(error, NetworkError) and "DNS" in str(error) and error.transient


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (512, 13_761_264_768, 65_248_815_744, 1500)] == [
        "512 B",
        "13.8 GB",
        "65.2 GB",
        "1.5 kB",
    ]
