"""kernels.cpu_build: choosing the instruction-set level, refusing one the CPU lacks, the build cache key, prepare()."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from gpt_oss_desktop.kernels import cpu_build

AVX2_ONLY = frozenset({"sse2", "avx", "avx2", "fma", "f16c"})  # an AMD Zen 3 / Intel Core 12th gen: no AVX-512


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """prepare() decides once per process: start from "not prepared", and restore the real decision after."""
    monkeypatch.setattr(cpu_build._Active, "status", None)
    monkeypatch.setattr(cpu_build._Active, "ops", None)


def _cpu_with(monkeypatch: pytest.MonkeyPatch, flags: frozenset[str]) -> None:
    monkeypatch.setattr(cpu_build, "cpu_flags", lambda: flags)
    monkeypatch.setattr(cpu_build.platform, "machine", lambda: "x86_64")


def test_levels_follow_the_cpu_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_with(monkeypatch, AVX2_ONLY)
    assert cpu_build.supported_levels() == ("avx2", "scalar")
    _cpu_with(monkeypatch, AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512dq"})
    assert cpu_build.supported_levels() == ("avx512", "avx2", "scalar")
    _cpu_with(monkeypatch, AVX2_ONLY | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"})
    assert cpu_build.supported_levels() == ("avx512bf16", "avx512", "avx2", "scalar")
    _cpu_with(monkeypatch, frozenset({"avx2"}))  # AVX2 without FMA (some VIA/Zhaoxin parts): only the scalar build
    assert cpu_build.supported_levels() == ("scalar",)


def test_the_bf16_prefetch_distance_follows_the_vendor_and_the_switch(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(cpu_build.BF16_PREFETCH_ENV, raising=False)
    monkeypatch.setattr(cpu_build, "cpu_vendor", lambda: "AuthenticAMD")
    assert cpu_build.bf16_prefetch_bytes() == 0
    monkeypatch.setattr(cpu_build, "cpu_vendor", lambda: "GenuineIntel")
    assert cpu_build.bf16_prefetch_bytes() == cpu_build.DEFAULT_BF16_PREFETCH_BYTES == 4096
    monkeypatch.setattr(cpu_build, "cpu_vendor", lambda: "")
    assert cpu_build.bf16_prefetch_bytes() == 4096
    monkeypatch.setenv(cpu_build.BF16_PREFETCH_ENV, " 8192 ")
    assert cpu_build.bf16_prefetch_bytes() == 8192
    monkeypatch.setenv(cpu_build.BF16_PREFETCH_ENV, "0")
    assert cpu_build.bf16_prefetch_bytes() == 0
    for bad in ("4k", "-1", str(2 << 20)):
        monkeypatch.setenv(cpu_build.BF16_PREFETCH_ENV, bad)
        with caplog.at_level(logging.WARNING, logger=cpu_build.__name__):
            assert cpu_build.bf16_prefetch_bytes() == 4096
        assert f"{cpu_build.BF16_PREFETCH_ENV}={bad!r}" in caplog.text
        caplog.clear()


def test_cpuinfo_gives_flags_model_and_vendor() -> None:
    info = cpu_build._read_cpuinfo()
    if info is None:
        pytest.skip("no /proc/cpuinfo here")
    assert info.flags == cpu_build.cpu_flags() and info.vendor == cpu_build.cpu_vendor()
    if info.model:
        assert cpu_build.cpu_model_name() == info.model
    if "avx2" in info.flags:  # an x86-64 CPU names its vendor ("GenuineIntel", "AuthenticAMD", ...)
        assert info.vendor


def test_without_proc_cpuinfo_the_flags_come_from_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu_build, "_read_cpuinfo", lambda: None)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    monkeypatch.setattr(cpu_build.platform, "machine", lambda: "x86_64")
    assert cpu_build.supported_levels() == ("avx2", "scalar")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
    assert cpu_build.supported_levels() == ("scalar",)


def test_the_best_level_is_the_default_and_the_switch_forces_another(monkeypatch: pytest.MonkeyPatch) -> None:
    _cpu_with(monkeypatch, AVX2_ONLY)
    monkeypatch.delenv(cpu_build.ISA_ENV, raising=False)
    assert cpu_build.requested_level() == "avx2"
    monkeypatch.setenv(cpu_build.ISA_ENV, "scalar")
    assert cpu_build.requested_level() == "scalar"
    monkeypatch.setenv(cpu_build.ISA_ENV, " AVX2 ")
    assert cpu_build.requested_level() == "avx2"


@pytest.mark.parametrize(("value", "match"), [("avx512", "lacks it; it has avx2, scalar"), ("sse9", "not a level")])
def test_a_level_the_cpu_lacks_is_refused(monkeypatch: pytest.MonkeyPatch, value: str, match: str) -> None:
    _cpu_with(monkeypatch, AVX2_ONLY)
    monkeypatch.setenv(cpu_build.ISA_ENV, value)
    with pytest.raises(cpu_build.CpuIsaError, match=match):
        cpu_build.requested_level()
    with pytest.raises(cpu_build.CpuIsaError):
        cpu_build.load_level(value)


def test_prepare_reports_a_refused_level_and_the_kernels_stay_off(
    monkeypatch: pytest.MonkeyPatch, fresh_state: None
) -> None:
    _cpu_with(monkeypatch, AVX2_ONLY)
    monkeypatch.setenv(cpu_build.ISA_ENV, "avx512")
    status = cpu_build.prepare()
    assert status.state is cpu_build.KernelState.FAILED and not status.ok
    assert "GPTOSS_CPU_ISA=avx512" in status.summary() and "slower fallback" in status.summary()
    assert not cpu_build.available()
    with pytest.raises(RuntimeError, match="lacks it"):
        cpu_build.ops()


def test_prepare_when_switched_off_builds_nothing(monkeypatch: pytest.MonkeyPatch, fresh_state: None) -> None:
    monkeypatch.setenv(cpu_build.FUSED_ENV, "0")
    monkeypatch.setattr(cpu_build, "compile_variant", pytest.fail)  # would build: it must not be reached
    calls: list[str] = []
    status = cpu_build.prepare(calls.append)
    assert status.state is cpu_build.KernelState.OFF
    assert "GPTOSS_CPU_FUSED=0" in (status.reason or "")
    assert calls == []


def test_prepare_loads_the_best_level_and_says_nothing_when_cached(fresh_state: None) -> None:
    best = cpu_build.supported_levels()[0]
    assert cpu_build.load_level(best).ok  # built (or loaded) once for the session
    calls: list[str] = []
    status = cpu_build.prepare(calls.append)
    assert status.ok and status.isa == best
    assert cpu_build.active_level() == best
    assert str(cpu_build.ops().isa()) == best
    assert calls == []  # already in this process: no build, no "first run" message


def test_build_cache_is_keyed_by_level_flags_and_install(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {level: cpu_build.extension_name(level) for level in cpu_build.LEVEL_NAMES}
    assert len(set(names.values())) == len(names)
    assert cpu_build.extension_name("avx2", extra_cflags=("-mtune=znver3",), tag="t") != names["avx2"]
    monkeypatch.setattr(cpu_build.sys, "prefix", "/some/other/venv")  # a second virtualenv
    assert cpu_build.extension_name("avx2") != names["avx2"]


def test_build_cache_key_covers_every_source_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sources = tmp_path / "cpu"
    shutil.copytree(cpu_build.SOURCE_DIR, sources)
    monkeypatch.setattr(cpu_build, "SOURCE_DIR", sources)
    original = cpu_build.extension_name("scalar")
    files = sorted(p for p in sources.iterdir() if p.suffix in (".cpp", ".h"))
    assert {"extension.cpp", "common.h", "gemv.cpp"} <= {p.name for p in files}
    for path in files:  # an edit to any one file, header or not, is a new build
        text = path.read_bytes()
        path.write_bytes(text + b"\n// edited\n")
        assert cpu_build.extension_name("scalar") != original, path.name
        path.write_bytes(text)
    assert cpu_build.extension_name("scalar") == original
    (sources / "new.h").write_text("// a new header\n")
    assert cpu_build.extension_name("scalar") != original


def test_missing_sources_are_a_failed_build_not_an_exception(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cpu_build, "SOURCE_DIR", tmp_path)  # an install that lost its package data
    status, namespace = cpu_build.compile_variant("scalar", tag="nosources")
    assert status.state is cpu_build.KernelState.FAILED and namespace is None
    assert "extension.cpp is missing" in (status.reason or "")


def test_the_sources_compile_without_warnings(cpu_isa: str) -> None:
    # Every variant is compiled with -Wall -Wextra; -Werror here turns any warning at this level into a failure.
    status, op = cpu_build.compile_variant(cpu_isa, extra_cflags=("-Werror",), tag="werror")
    assert status.ok, status.reason
    assert str(op.isa()) == cpu_isa


def test_build_root_respects_torch_extensions_dir_then_the_user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    assert cpu_build.build_root() == tmp_path / "ext"
    monkeypatch.delenv("TORCH_EXTENSIONS_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert cpu_build.build_root() == tmp_path / "cache" / "gpt-oss-desktop" / "torch_extensions"


def test_a_failed_build_is_reported_with_its_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    calls: list[str] = []
    status, namespace = cpu_build.compile_variant("scalar", tag="nocompiler", on_progress=calls.append)
    assert status.state is cpu_build.KernelState.FAILED and namespace is None
    assert status.reason
    assert calls == ["Building the CPU kernels for scalar (first run only)"]


@pytest.mark.parametrize("tuning", ["-mtune=znver3", "-mtune=alderlake"])
def test_avx2_rows_equal_lone_rows_whatever_the_tuning(tuning: str) -> None:
    # The AVX2 build tuned for AMD Zen 3 (what -march=native gave on such a machine) once summed a bf16 GEMV row's
    # K tail (K % 32 != 0) with an FMA for a lone token and without one in a tile of 2 tokens: fp32 rows differed.
    if "avx2" not in cpu_build.supported_levels():
        pytest.skip(f"this CPU ({cpu_build.cpu_model_name()}) lacks avx2")
    status, op = cpu_build.compile_variant("avx2", extra_cflags=(tuning,), tag=tuning.split("=")[1])
    assert status.ok, status.reason
    for k in (33, 2881):
        for t in (2, 3, 4):
            gen = torch.Generator().manual_seed(k + t)
            weight = torch.randn(37, k, generator=gen).to(torch.bfloat16)
            x = torch.randn(t, k, generator=gen)
            together = op.bf16_linear(x, weight, None, False)
            for row in range(t):
                assert torch.equal(together[row], op.bf16_linear(x[row : row + 1], weight, None, False)[0]), (k, t)
