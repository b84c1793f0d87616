"""Fixtures for download tests: tiny gpt-oss checkpoints written by the engine's writer, served by a local Hub.

The suite runs with ``HF_HUB_OFFLINE=1`` (tests/conftest.py) and huggingface_hub read it at import, so tests that
talk to the local Hub request ``online``: it flips ``huggingface_hub.constants.HF_HUB_OFFLINE`` (the attribute the
client checks on every request) and hides any real token. The server's URL is passed explicitly as the endpoint
(:class:`app.downloads.HubSettings`), never through ``HF_ENDPOINT``, which the client would only read at import.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants
from PySide6.QtWidgets import QApplication

from gpt_oss_desktop.app.downloads import (
    CatalogModel,
    HubCacheDestination,
    HubSettings,
    ModelDownload,
    ModelRegistry,
    RetryPolicy,
)
from gpt_oss_desktop.app.downloads.errors import ConnectionDroppedError
from gpt_oss_desktop.engine.checkpoint import PRESETS, checkpoint_bytes, random_weights, write_checkpoint
from gpt_oss_desktop.engine.config import ModelConfig
from tests.helpers.hub_server import HostedRepo, HubServer, hosted_file

REPO_ID = "openai/gpt-oss-20b"
# The tiny preset with a larger vocabulary: 4.3 MB of weights, i.e. several 1 MiB transfer chunks, so a transfer
# can be cut, paused and resumed in the middle of a file.
TEST_CONFIG: ModelConfig = PRESETS["tiny"].replace(vocab_size=16384)
FAST_RETRY = RetryPolicy(max_attempts=4, first_delay=0.01, max_delay=0.05)


def write_test_checkpoint(out: Path, shards: int = 1, seed: int = 0) -> Path:
    write_checkpoint(out, TEST_CONFIG, random_weights(TEST_CONFIG, seed=seed), "original", shards)
    return out


def catalog_entry(shards: int = 1, repo_id: str = REPO_ID) -> CatalogModel:
    files = (
        ("original/model.safetensors",)
        if shards == 1
        else tuple(f"original/model--{k:05d}-of-{shards:05d}.safetensors" for k in range(1, shards + 1))
    )
    key = repo_id.split("/")[1]
    return CatalogModel(key, repo_id, TEST_CONFIG, files, checkpoint_bytes(TEST_CONFIG, "original"), "test model")


def cut_download(model: CatalogModel, hub: HubSettings, registry: ModelRegistry) -> None:
    """Download ``model`` into the Hub cache until a reset the test set on the server ends it, with no retry: the
    registry keeps it pending, as when the app was closed mid-download."""
    job = ModelDownload(
        model, HubCacheDestination(hub.cache_dir, model.repo_id), hub, registry, retry=RetryPolicy(max_attempts=1)
    )
    with pytest.raises(ConnectionDroppedError):
        job.download()


def hosted_repo(checkpoint: Path, decoys: Path, repo_id: str = REPO_ID) -> HostedRepo:
    """The checkpoint under original/, plus files a download must never touch: metal/ and the root HF layout."""
    repo = HostedRepo.from_folder(repo_id, checkpoint)
    for name in ("metal/model.bin", "model-00000-of-00001.safetensors", "config.json"):
        repo.add(hosted_file(name, decoys / name.replace("/", "_")))
    return repo


@pytest.fixture(scope="session")
def checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("ckpt"))


@pytest.fixture(scope="session")
def sharded_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_checkpoint(tmp_path_factory.mktemp("ckpt-sharded"), shards=2, seed=1)


@pytest.fixture(scope="session")
def decoy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("decoys")
    for name in ("metal_model.bin", "model-00000-of-00001.safetensors", "config.json"):
        (folder / name).write_bytes(b"never download me\n" * 1000)
    return folder


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture
def local_hub(online: None, checkpoint_dir: Path, sharded_checkpoint_dir: Path, decoy_dir: Path) -> Iterator[HubServer]:
    """openai/gpt-oss-20b (one weight file) and openai/gpt-oss-120b (two shards + index), with decoys."""
    repos = (
        hosted_repo(checkpoint_dir, decoy_dir),
        hosted_repo(sharded_checkpoint_dir, decoy_dir, "openai/gpt-oss-120b"),
    )
    with HubServer(*repos) as server:
        yield server


@pytest.fixture
def hub_settings(local_hub: HubServer, tmp_path: Path) -> HubSettings:
    return HubSettings(endpoint=local_hub.url, cache_dir=tmp_path / "hf-cache")


@pytest.fixture
def no_quit_on_close(qapp: QApplication) -> Iterator[None]:
    """Closing a test's only window would quit the app, which stops the qasync loop under the test."""
    qapp.setQuitOnLastWindowClosed(False)
    yield
    qapp.setQuitOnLastWindowClosed(True)


@pytest.fixture
def model_registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "data" / "models.json")
