"""Download and verification throughput of the model downloader against the local test Hub; prints JSON.

    python benchmarks/bench_download.py [--preset small] [--repeat 1]

Writes a random-weight checkpoint with the engine's writer (``small`` is 211 MB in one file), serves it from
tests/helpers/hub_server.py on the loopback interface, and runs :class:`app.downloads.ModelDownload` with the real
huggingface_hub client into a fresh Hugging Face cache: phase 1 (plan + transfer, every byte over HTTP through
``http_get`` and the progress bridge) and phase 2 (SHA-256 of every file, install into the cache, the engine's
validator, registration) are timed separately. Also reported: plain ``hashlib`` SHA-256 speed on the same file
(the floor of phase 2) and ``shutil.copyfile`` speed (what the disk alone allows).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from huggingface_hub import constants

from gpt_oss_desktop.app.downloads import CatalogModel, HubCacheDestination, HubSettings, ModelDownload, ModelRegistry
from gpt_oss_desktop.engine.checkpoint import PRESETS, checkpoint_bytes, random_weights, write_checkpoint
from tests.helpers.hub_server import HostedRepo, HubServer

MB = 1e6


def _sha256_seconds(path: Path) -> float:
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return time.perf_counter() - started


def run(preset: str, repeat: int, work: Path) -> dict[str, object]:
    config = PRESETS[preset]
    checkpoint = work / "checkpoint"
    started = time.perf_counter()
    write_checkpoint(checkpoint, config, random_weights(config, seed=0), "original")
    write_seconds = time.perf_counter() - started
    weights = checkpoint / "model.safetensors"
    size = sum(p.stat().st_size for p in checkpoint.iterdir())
    model = CatalogModel(
        f"bench-{preset}",
        "openai/gpt-oss-20b",
        config,
        ("original/model.safetensors",),
        checkpoint_bytes(config, "original"),
        "",
    )
    constants.HF_HUB_OFFLINE = False  # the client may be imported with HF_HUB_OFFLINE=1 (as in the tests)
    runs = []
    with HubServer(HostedRepo.from_folder(model.repo_id, checkpoint)) as server:
        for k in range(repeat):
            hub = HubSettings(server.url, work / f"cache-{k}")
            registry = ModelRegistry(work / f"models-{k}.json")
            job = ModelDownload(model, HubCacheDestination(hub.cache_dir, model.repo_id), hub, registry)
            t0 = time.perf_counter()
            job.download()
            t1 = time.perf_counter()
            installed = job.verify_and_install()
            t2 = time.perf_counter()
            assert installed.verified
            runs.append({"download_s": round(t1 - t0, 3), "verify_install_s": round(t2 - t1, 3)})
            shutil.rmtree(hub.cache_dir)
    hash_s = _sha256_seconds(weights)
    copy_started = time.perf_counter()
    shutil.copyfile(weights, work / "copy.bin")
    copy_s = time.perf_counter() - copy_started
    best_download = min(r["download_s"] for r in runs)
    best_verify = min(r["verify_install_s"] for r in runs)
    return {
        "benchmark": "model download (local Hub over loopback, real huggingface_hub client)",
        "preset": preset,
        "bytes": size,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "checkpoint_write_s": round(write_seconds, 2),
        "runs": runs,
        "download_MB_per_s": round(size / best_download / MB, 1),
        "verify_install_s": best_verify,
        "verify_MB_per_s": round(size / best_verify / MB, 1),
        "plain_sha256_MB_per_s": round(weights.stat().st_size / hash_s / MB, 1),
        "disk_copy_MB_per_s": round(weights.stat().st_size / copy_s / MB, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="engine checkpoint preset (default: small, 211 MB)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-download-") as work:
        print(json.dumps(run(args.preset, args.repeat, Path(work)), indent=2))  # noqa: T201 (the report)


if __name__ == "__main__":
    main()
