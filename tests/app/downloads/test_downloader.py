"""ModelDownload end to end: the real huggingface_hub client against the local Hub (tests/helpers/hub_server.py),
checkpoints written by the engine's writer, and the engine's validator at the end."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from huggingface_hub import constants

from gpt_oss_desktop.app.downloads import (
    DownloadEvent,
    FolderDestination,
    HubCacheDestination,
    HubSettings,
    ModelDownload,
    ModelRegistry,
    Progress,
    Refetching,
    Retrying,
    RetryPolicy,
    TransferStopped,
)
from gpt_oss_desktop.app.downloads.errors import (
    AuthRequiredError,
    ConnectionDroppedError,
    DiskFullError,
    NetworkError,
    NotEnoughSpaceError,
    NotFoundError,
    OfflineError,
    PermissionDeniedError,
    VerificationError,
)
from gpt_oss_desktop.app.downloads.transfer import CHUNK_BYTES
from gpt_oss_desktop.engine.checkpoint import load_checkpoint
from tests.helpers.hub_fixtures import FAST_RETRY, REPO_ID, catalog_entry
from tests.helpers.hub_server import Fault, HubServer

WEIGHTS = "original/model.safetensors"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_job(
    hub: HubSettings,
    registry: ModelRegistry,
    *,
    folder: Path | None = None,
    events: list[DownloadEvent] | None = None,
    **kwargs: object,
) -> ModelDownload:
    model = catalog_entry(**({"shards": 2, "repo_id": "openai/gpt-oss-120b"} if kwargs.pop("sharded", False) else {}))
    destination = (
        FolderDestination(folder, model.repo_id) if folder else HubCacheDestination(hub.cache_dir, model.repo_id)
    )
    listener = events.append if events is not None else None
    kwargs.setdefault("retry", FAST_RETRY)
    return ModelDownload(model, destination, hub, registry, listener=listener, **kwargs)  # type: ignore[arg-type]


def test_full_download_into_the_cache_verifies_and_registers(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer, checkpoint_dir: Path
) -> None:
    events: list[DownloadEvent] = []
    installed = make_job(hub_settings, model_registry, events=events).run()

    snapshot = hub_settings.cache_dir / "models--openai--gpt-oss-20b" / "snapshots" / installed.commit  # type: ignore[operator]
    assert Path(installed.path) == snapshot
    assert sorted(p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()) == [
        "original/config.json",
        "original/dtypes.json",
        WEIGHTS,
    ]
    # The cache layout is the hub client's own: a blob named by its SHA-256, linked from the snapshot, refs/main.
    weights = snapshot / WEIGHTS
    assert weights.is_symlink() and weights.resolve().name == sha256(checkpoint_dir / "model.safetensors")
    assert (snapshot.parent.parent / "refs" / "main").read_text() == installed.commit
    assert installed.verified and installed.check == "sha256" and installed.layout == "original"
    assert model_registry.models() == [installed] and model_registry.pending is None
    assert ModelRegistry(model_registry.path).models() == [installed]  # persisted
    assert load_checkpoint(installed.path).config.vocab_size == 16384
    # Only original/ was fetched: never metal/, never the root (Hugging Face) layout.
    fetched = {r.path for r in local_hub.requests if "/resolve/" in r.path}
    assert fetched and all("/original/" in p for p in fetched)
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress[-1].phase == "verify" and progress[-1].done == progress[-1].total
    assert max(e.done for e in progress if e.phase == "download") == installed.size_bytes


def test_full_download_into_a_folder(
    hub_settings: HubSettings, model_registry: ModelRegistry, tmp_path: Path, checkpoint_dir: Path
) -> None:
    folder = tmp_path / "models" / "gpt-oss-20b"
    installed = make_job(hub_settings, model_registry, folder=folder).run()
    assert Path(installed.path) == folder and installed.storage == "folder"
    assert (folder / WEIGHTS).read_bytes() == (checkpoint_dir / "model.safetensors").read_bytes()
    assert not (folder / ".cache" / "gpt-oss-desktop").exists()  # no partial files, not even empty folders


def test_sharded_checkpoint_fetches_every_shard_and_the_index(
    hub_settings: HubSettings, model_registry: ModelRegistry
) -> None:
    job = make_job(hub_settings, model_registry, sharded=True)
    assert [f.path for f in job.prepare().files] == [
        "original/config.json",
        "original/dtypes.json",
        "original/model--00001-of-00002.safetensors",
        "original/model--00002-of-00002.safetensors",
        "original/model.safetensors.index.json",
    ]
    installed = job.run()
    assert load_checkpoint(installed.path).files[0].name.startswith("model--0000")


def test_a_cut_connection_is_resumed_with_a_range_request(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    size = local_hub.state.repos[REPO_ID].files[WEIGHTS].size
    local_hub.add_fault(Fault("cut", WEIGHTS, after_bytes=size // 2))
    installed = make_job(hub_settings, model_registry).run()
    gets = local_hub.file_gets(WEIGHTS)
    assert len(gets) == 2 and gets[0].range_start is None
    resumed_at = gets[1].range_start
    # The client keeps whole 1 MiB chunks of what arrived and asks for the rest only.
    assert resumed_at is not None and 0 < resumed_at <= size // 2 and resumed_at % CHUNK_BYTES == 0
    assert local_hub.bytes_sent(WEIGHTS) < 1.6 * size
    assert installed.verified


def test_a_reset_connection_is_retried_with_backoff_and_resumed(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    local_hub.add_fault(Fault("reset", WEIGHTS, after_bytes=3 * CHUNK_BYTES + 100))
    events: list[DownloadEvent] = []
    installed = make_job(hub_settings, model_registry, events=events).run()
    retries = [e for e in events if isinstance(e, Retrying)]
    assert len(retries) == 1 and retries[0].file == WEIGHTS and "closed the connection" in retries[0].reason
    assert [g.range_start for g in local_hub.file_gets(WEIGHTS)] == [None, 3 * CHUNK_BYTES]
    assert installed.verified


def test_an_interrupted_download_resumes_after_a_restart(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    # The connection drops and the job may not retry: it gives up with a clear error, keeping the partial file.
    local_hub.add_fault(Fault("reset", WEIGHTS, after_bytes=2 * CHUNK_BYTES + 5))
    job = make_job(hub_settings, model_registry, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(ConnectionDroppedError, match=r"middle of original/model.safetensors \(2.1 MB of 4.3 MB"):
        job.run()
    partial = job.destination.partial_path(job.prepare().file(WEIGHTS))
    assert partial.stat().st_size == 2 * CHUNK_BYTES
    assert model_registry.pending is not None and model_registry.models() == []

    # "Restart": a new registry object reads the pending record from disk, a new job resumes the partial file.
    local_hub.state.faults.clear()
    reopened = ModelRegistry(model_registry.path)
    pending = reopened.pending
    assert pending is not None and pending.repo_id == REPO_ID and pending.location == str(hub_settings.cache_dir)
    installed = make_job(hub_settings, reopened).run()
    assert local_hub.file_gets(WEIGHTS)[-1].range_start == 2 * CHUNK_BYTES
    assert installed.verified and reopened.pending is None and not partial.exists()


def test_pause_keeps_the_partial_file_and_resume_continues_it(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    job: ModelDownload

    def pause_after_two_chunks(event: DownloadEvent) -> None:
        if isinstance(event, Progress) and event.file == WEIGHTS and event.file_done >= 2 * CHUNK_BYTES:
            job.pause()

    job = make_job(hub_settings, model_registry, event_interval=0)  # an event per chunk
    job.listener = pause_after_two_chunks
    with pytest.raises(TransferStopped) as stopped:
        job.download()
    assert stopped.value.reason == "pause"
    partial = job.destination.partial_path(job.prepare().file(WEIGHTS))
    kept = partial.stat().st_size
    assert kept >= 2 * CHUNK_BYTES and kept % CHUNK_BYTES == 0
    assert model_registry.pending is not None  # a restart would offer to resume

    job.listener = None
    installed = job.run()
    assert local_hub.file_gets(WEIGHTS)[-1].range_start == kept
    assert installed.verified


def test_cancel_keeps_partial_files_but_forgets_the_pending_download(
    hub_settings: HubSettings, model_registry: ModelRegistry
) -> None:
    job: ModelDownload

    def cancel_midway(event: DownloadEvent) -> None:
        if isinstance(event, Progress) and event.file == WEIGHTS and event.file_done >= CHUNK_BYTES:
            job.cancel()

    job = make_job(hub_settings, model_registry, event_interval=0)
    job.listener = cancel_midway
    with pytest.raises(TransferStopped, match="cancel"):
        job.download()
    assert model_registry.pending is None
    copy = job.destination.find_local_copy(job.model)
    assert copy is not None and not copy.complete and copy.partial_bytes >= CHUNK_BYTES
    assert job.discard_partials() == copy.partial_bytes
    assert job.destination.find_local_copy(job.model) is not None  # config.json etc. are still there


def test_a_corrupted_byte_fails_verification_and_is_fetched_again(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer, checkpoint_dir: Path
) -> None:
    local_hub.add_fault(Fault("corrupt", WEIGHTS, after_bytes=1_234_567))
    events: list[DownloadEvent] = []
    installed = make_job(hub_settings, model_registry, events=events).run()
    refetched = [e for e in events if isinstance(e, Refetching)]
    assert [e.file for e in refetched] == [WEIGHTS] and "SHA-256" in refetched[0].reason
    assert len(local_hub.file_gets(WEIGHTS)) == 2
    assert sha256(Path(installed.path) / WEIGHTS) == sha256(checkpoint_dir / "model.safetensors")


def test_corruption_that_persists_is_reported_and_nothing_is_registered(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    local_hub.add_fault(Fault("corrupt", WEIGHTS, after_bytes=10, times=100))
    job = make_job(hub_settings, model_registry)
    with pytest.raises(VerificationError, match="does not match the Hub's record"):
        job.run()
    assert model_registry.models() == []
    assert not (job.destination.model_dir(job.prepare().commit) / WEIGHTS).exists()  # never installed


def test_401_asks_for_a_token_and_the_token_is_sent_to_the_hub_only(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    local_hub.require_token("hf_secret")
    with pytest.raises(AuthRequiredError, match="needs a valid token") as refused:
        make_job(hub_settings, model_registry).prepare()
    assert "token" in refused.value.advice
    installed = make_job(hub_settings.with_token("hf_secret"), model_registry).run()
    assert installed.verified
    hub_calls = [r for r in local_hub.requests if r.origin == "hub"]
    assert all(r.headers.get("authorization") == "Bearer hf_secret" for r in hub_calls[1:])
    assert all("authorization" not in r.headers for r in local_hub.requests if r.origin == "cdn")


def test_http_errors_on_a_file_are_named_and_5xx_is_retried(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    local_hub.add_fault(Fault("status", WEIGHTS, status=403))
    with pytest.raises(AuthRequiredError, match="HTTP 403"):
        make_job(hub_settings, model_registry).download()
    local_hub.add_fault(Fault("status", WEIGHTS, status=404))
    with pytest.raises(NotFoundError, match=r"original/model.safetensors was not found on the Hub \(HTTP 404\)"):
        make_job(hub_settings, model_registry).download()
    local_hub.add_fault(Fault("status", WEIGHTS, status=503, times=2))
    events: list[DownloadEvent] = []
    assert make_job(hub_settings, model_registry, events=events).run().verified
    assert [e.reason for e in events if isinstance(e, Retrying)] == [
        "The Hub answered HTTP 503 while fetching original/model.safetensors."
    ] * 2


def test_offline_mode_gives_a_clear_message(tmp_path: Path, model_registry: ModelRegistry) -> None:
    # No `online` fixture: the suite's HF_HUB_OFFLINE=1 is in force, as a user's would be.
    settings = HubSettings.from_environment({"HF_HOME": str(tmp_path / "hf")})
    assert settings.offline and settings.cache_dir == tmp_path / "hf" / "hub"
    with pytest.raises(OfflineError, match="Offline mode is on") as offline:
        make_job(settings, model_registry).run()
    assert "HF_HUB_OFFLINE" in offline.value.advice
    assert model_registry.pending is None


def test_no_network_and_404_give_clear_messages(
    online: None, local_hub: HubServer, tmp_path: Path, model_registry: ModelRegistry
) -> None:
    closed = HubServer()  # binds a port; stopped before it ever served, nothing listens there
    closed.stop()
    unreachable = HubSettings(endpoint=closed.url, cache_dir=tmp_path / "c")
    with pytest.raises(NetworkError, match="no network connection"):
        make_job(unreachable, model_registry).prepare()
    no_dns = HubSettings(endpoint="http://gpt-oss-desktop-test.invalid", cache_dir=tmp_path / "c")  # RFC 2606 name
    with pytest.raises(NetworkError, match="DNS lookup failed") as dns:
        make_job(no_dns, model_registry).prepare()
    assert "internet connection" in dns.value.advice
    settings = HubSettings(endpoint=local_hub.url, cache_dir=tmp_path / "c")
    missing = ModelDownload(
        catalog_entry(repo_id="openai/gpt-oss-7b"), HubCacheDestination(tmp_path, "x/y"), settings, model_registry
    )
    with pytest.raises(NotFoundError, match=r"openai/gpt-oss-7b was not found on the Hub \(HTTP 404\)"):
        missing.prepare()


def test_an_existing_cache_copy_is_detected_and_reused_without_network(
    hub_settings: HubSettings,
    model_registry: ModelRegistry,
    local_hub: HubServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    first = make_job(hub_settings, model_registry).run()
    local_hub.stop()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    offline = HubSettings(endpoint=local_hub.url, cache_dir=hub_settings.cache_dir, offline=True)
    fresh = ModelRegistry(tmp_path / "other" / "models.json")
    job = make_job(offline, fresh)
    copy = job.destination.find_local_copy(job.model)
    assert copy is not None and copy.complete and copy.hashed and copy.commit == first.commit
    requests_before = len(local_hub.requests)
    installed = job.use_local_copy(copy)
    assert len(local_hub.requests) == requests_before
    assert installed.path == first.path and installed.verified and installed.source == "existing"
    assert fresh.models() == [installed]

    # A damaged blob is caught by its own name (the SHA-256 the Hub gave when it was downloaded).
    blob = (Path(first.path) / WEIGHTS).resolve()
    data = bytearray(blob.read_bytes())
    data[100] ^= 1
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(VerificationError, match="damaged"):
        make_job(offline, fresh).use_local_copy(copy)


def test_not_enough_disk_space_refuses_before_downloading_weights(
    hub_settings: HubSettings, model_registry: ModelRegistry, local_hub: HubServer
) -> None:
    probed: list[Path] = []

    def tiny_disk(path: Path) -> int:
        probed.append(path)
        return 500_000_000

    job = make_job(hub_settings, model_registry, disk_free=tiny_disk)
    with pytest.raises(NotEnoughSpaceError, match=r"needs 1\.1 GB .* only 500\.0 MB is free") as refused:
        job.download()
    assert probed and refused.value.free == 500_000_000
    assert local_hub.file_gets(WEIGHTS) == [] and model_registry.pending is None


def test_a_full_disk_mid_download_is_reported(hub_settings: HubSettings, model_registry: ModelRegistry) -> None:
    job = make_job(hub_settings, model_registry)
    partial = job.destination.partial_path(job.prepare().file(WEIGHTS))
    partial.parent.mkdir(parents=True)
    partial.symlink_to("/dev/full")  # every write fails with ENOSPC, as on a full disk
    with pytest.raises(DiskFullError, match="The disk is full") as full:
        job.download()
    assert "Resume" in full.value.advice


def test_an_unwritable_folder_is_reported(hub_settings: HubSettings, model_registry: ModelRegistry) -> None:
    # sysfs refuses new files even to root, which these tests may run as
    job = make_job(hub_settings, model_registry, folder=Path("/sys/gpt-oss-desktop-test"))
    with pytest.raises(PermissionDeniedError, match="Permission denied: cannot write to /sys/gpt-oss-desktop-test"):
        job.download()
