"""File selection for the two real repos (file lists: docs/model.md#hub-repository-files), the catalog's numbers,
the hardware verdict."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpt_oss_desktop.app.backends.local_engine import DEFAULT_CONTEXT
from gpt_oss_desktop.app.downloads import CATALOG, MachineInfo, MachineProbe, Verdict, assess, catalog_model
from gpt_oss_desktop.app.downloads.catalog import KV_CONTEXT_TOKENS, kv_cache_bytes
from gpt_oss_desktop.app.downloads.errors import PlanError
from gpt_oss_desktop.app.downloads.hardware import GpuInfo, disk_needed, existing_parent
from gpt_oss_desktop.app.downloads.plan import RemoteFile, select_original_files
from gpt_oss_desktop.engine.checkpoint import PRESETS, checkpoint_bytes

GB = 10**9

ROOT_FILES = [
    ".gitattributes",
    "LICENSE",
    "README.md",
    "USAGE_POLICY",
    "chat_template.jinja",
    "config.json",
    "generation_config.json",
    "model.safetensors.index.json",
    "special_tokens_map.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "metal/model.bin",
]


def remote(path: str) -> RemoteFile:
    lfs = path.endswith((".safetensors", ".bin"))
    return RemoteFile(path, 1000, "a" * 64 if lfs else None, "b" * 40)


def repo_20b() -> list[RemoteFile]:
    names = [*ROOT_FILES, *(f"model-0000{k}-of-00002.safetensors" for k in range(3))]
    names += ["original/config.json", "original/dtypes.json", "original/model.safetensors"]
    return [remote(n) for n in names]


def repo_120b() -> list[RemoteFile]:
    names = [*ROOT_FILES, *(f"model-{k:05d}-of-00014.safetensors" for k in range(15))]
    names += ["original/config.json", "original/dtypes.json", "original/model.safetensors.index.json"]
    names += [f"original/model--{k:05d}-of-00007.safetensors" for k in range(1, 8)]
    return [remote(n) for n in reversed(names)]  # the Hub's order must not matter


def test_20b_plan_is_the_original_folder_only() -> None:
    chosen = [f.path for f in select_original_files("openai/gpt-oss-20b", repo_20b())]
    assert chosen == ["original/config.json", "original/dtypes.json", "original/model.safetensors"]


def test_120b_plan_has_all_seven_shards_and_the_index() -> None:
    chosen = [f.path for f in select_original_files("openai/gpt-oss-120b", repo_120b())]
    assert chosen == [
        "original/config.json",
        "original/dtypes.json",
        *(f"original/model--{k:05d}-of-00007.safetensors" for k in range(1, 8)),
        "original/model.safetensors.index.json",
    ]
    assert not any(p.startswith("metal/") or "/" not in p for p in chosen)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("original/config.json", "has no original/config.json"),
        ("original/model--00004-of-00007.safetensors", "incomplete or mixed set of weight shards"),
    ],
)
def test_a_repo_without_a_complete_original_folder_is_refused(drop: str, message: str) -> None:
    files = [f for f in repo_120b() if f.path != drop]
    with pytest.raises(PlanError, match=message):
        select_original_files("openai/gpt-oss-120b", files)


def test_a_repo_with_only_the_hf_layout_is_refused() -> None:
    files = [f for f in repo_20b() if not f.path.startswith("original/model")]
    with pytest.raises(PlanError, match="no weights in original/"):
        select_original_files("x/y", files)


def test_catalog_sizes_come_from_the_engine_configs() -> None:
    small, large = catalog_model("gpt-oss-20b"), catalog_model("gpt-oss-120b")
    assert [m.key for m in CATALOG] == ["gpt-oss-20b", "gpt-oss-120b"]
    # 13.76 GB: docs/model.md#sizes
    assert small.weight_bytes == checkpoint_bytes(PRESETS["20b"], "original") == 13_761_264_768
    assert round(large.weight_bytes / GB, 2) == 65.25  # docs/model.md#hub-repository-files
    assert large.weight_files[-1] == "original/model--00007-of-00007.safetensors" and large.sharded
    # 12 full layers keep every token, 12 sliding layers 128: K and V of 8 heads x 64 dims in bf16
    assert kv_cache_bytes(PRESETS["20b"]) == 2 * 8 * 64 * 2 * (12 * 16384 + 12 * 128)
    assert KV_CONTEXT_TOKENS == DEFAULT_CONTEXT
    assert 14 * GB < small.memory_needed < 15 * GB
    with pytest.raises(KeyError, match="choose one of gpt-oss-20b, gpt-oss-120b"):
        catalog_model("gpt-oss-7b")


def machine(gpu_free: float | None, ram: float, disk: float = 500) -> MachineInfo:
    gpu = GpuInfo("NVIDIA H100 80GB HBM3", int(gpu_free * GB), int(80 * GB)) if gpu_free is not None else None
    return MachineInfo(gpu, int(ram * GB), int(disk * GB), Path("/models"))


@pytest.mark.parametrize(
    ("key", "box", "verdict", "reason"),
    [
        ("gpt-oss-20b", machine(gpu_free=79, ram=64), Verdict.FITS_GPU, "NVIDIA H100 80GB HBM3: 79.0 GB free"),
        ("gpt-oss-120b", machine(gpu_free=79, ram=64), Verdict.FITS_GPU, "needs 66."),
        ("gpt-oss-20b", machine(gpu_free=None, ram=24), Verdict.CPU_ONLY, "no CUDA GPU; 24.0 GB of RAM"),
        ("gpt-oss-20b", machine(gpu_free=7.5, ram=32), Verdict.CPU_ONLY, "has 7.5 GB free, needs 14."),
        ("gpt-oss-120b", machine(gpu_free=None, ram=24), Verdict.DOES_NOT_FIT, "needs 66."),
        ("gpt-oss-20b", machine(gpu_free=79, ram=64, disk=10), Verdict.DOES_NOT_FIT, "10.0 GB free at /models"),
    ],
)
def test_verdict(key: str, box: MachineInfo, verdict: Verdict, reason: str) -> None:
    result = assess(catalog_model(key), box)
    assert result.verdict is verdict and reason in result.reason


def test_bytes_already_on_disk_lower_the_disk_needed() -> None:
    model = catalog_model("gpt-oss-20b")
    box = machine(gpu_free=None, ram=64, disk=5)
    assert assess(model, box).verdict is Verdict.DOES_NOT_FIT
    assert assess(model, box, already_on_disk=model.download_bytes - GB).verdict is Verdict.CPU_ONLY
    assert disk_needed(100 * GB) == 102 * GB and disk_needed(0) == 1024**3


def test_the_probe_measures_the_target_with_injected_parts(tmp_path: Path) -> None:
    target = tmp_path / "not" / "yet" / "there"
    assert existing_parent(target) == tmp_path
    seen: list[Path] = []
    probe = MachineProbe(gpu=lambda: None, ram=lambda: 8 * GB, disk_free=lambda p: seen.append(p) or 3 * GB)
    box = probe(target)
    assert box == MachineInfo(None, 8 * GB, 3 * GB, target) and seen == [target]
    real = MachineProbe()(target)  # the real probes run (no GPU on most CI machines)
    assert real.ram_bytes > GB and real.disk_free_bytes > 0
