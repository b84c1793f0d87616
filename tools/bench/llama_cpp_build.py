"""A cached llama.cpp build for the peer benchmark: the llama.cpp that ``llama-cpp-python``'s source distribution
vendors, fetched from PyPI (the only index this project can rely on) and built for this CPU with CMake.

Layout under the cache folder (default ``~/.cache/gpt-oss-desktop/llama-cpp``)::

    sdist/llama_cpp_python-<version>.tar.gz      pip download --no-binary :all: --no-deps
    src-<version>/vendor/llama.cpp/              the extracted sources (converter included)
    build-<version>-<isa>/bin/llama-bench        one build folder per ISA choice; ``build.json`` marks it complete

A build on two cores takes several minutes; later runs find ``build.json`` with the same flags and skip CMake.
Tool output goes to stderr: stdout is left to the caller's JSON.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

DEFAULT_VERSION: Final = "0.3.36"
DEFAULT_CACHE: Final = Path.home() / ".cache" / "gpt-oss-desktop" / "llama-cpp"
TARGETS: Final = ("llama-bench", "llama-quantize")

_COMMON_FLAGS: Final = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_CURL=OFF",
)
_AVX2: Final = ("-DGGML_NATIVE=OFF", "-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON",
                "-DGGML_BMI2=ON")  # fmt: skip
# ggml's CPU backend per instruction-set level; "native" lets the compiler see this CPU (-march=native), the explicit
# levels match the engine's forced kernel levels (GPTOSS_CPU_ISA) for like-for-like comparisons.
ISA_FLAGS: Final[dict[str, tuple[str, ...]]] = {
    "native": ("-DGGML_NATIVE=ON",),
    "avx2": _AVX2,
    "avx512": (*_AVX2, "-DGGML_AVX512=ON", "-DGGML_AVX512_VBMI=ON", "-DGGML_AVX512_VNNI=ON"),
    "avx512bf16": (
        *_AVX2,
        "-DGGML_AVX512=ON",
        "-DGGML_AVX512_VBMI=ON",
        "-DGGML_AVX512_VNNI=ON",
        "-DGGML_AVX512_BF16=ON",
    ),
}


@dataclass(frozen=True, slots=True)
class LlamaCppBuild:
    """A finished build: its tools, the sources (for the converter) and how it was made."""

    version: str
    isa: str
    source_dir: Path  # vendor/llama.cpp
    build_dir: Path
    cmake_flags: tuple[str, ...]
    build_s: float  # 0.0 when the cached build was reused

    @property
    def llama_bench(self) -> Path:
        return self.build_dir / "bin" / "llama-bench"

    @property
    def llama_quantize(self) -> Path:
        return self.build_dir / "bin" / "llama-quantize"

    @property
    def converter(self) -> Path:
        return self.source_dir / "convert_hf_to_gguf.py"


def fetch_sources(cache: Path, version: str) -> Path:
    """The vendored llama.cpp folder of ``llama-cpp-python==version``, downloaded and extracted on first use."""
    src_root = cache / f"src-{version}"
    llama_dir = src_root / "vendor" / "llama.cpp"
    if (llama_dir / "CMakeLists.txt").is_file():
        return llama_dir
    sdist_dir = cache / "sdist"
    archive = sdist_dir / f"llama_cpp_python-{version}.tar.gz"
    if not archive.is_file():
        sdist_dir.mkdir(parents=True, exist_ok=True)
        logger.info("downloading llama-cpp-python %s sources from PyPI", version)
        pip = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps", "-d", str(sdist_dir)]
        subprocess.run([*pip, f"llama-cpp-python=={version}"], check=True, stdout=sys.stderr)
    logger.info("extracting %s", archive.name)
    staging = cache / f".extract-{version}"
    with tarfile.open(archive) as tar:
        tar.extractall(staging, filter="data")
    # The archive holds one top folder, llama_cpp_python-<version>/.
    (top,) = list(staging.iterdir())
    top.rename(src_root)
    staging.rmdir()
    return llama_dir


def build_llama_cpp(
    cache: Path = DEFAULT_CACHE, *, version: str = DEFAULT_VERSION, isa: str = "native", jobs: int | None = None
) -> LlamaCppBuild:
    """Build (or reuse) llama-bench and llama-quantize with ggml's CPU backend for ``isa``."""
    source_dir = fetch_sources(cache, version)
    build_dir = cache / f"build-{version}-{isa}"
    flags = (*_COMMON_FLAGS, *ISA_FLAGS[isa])
    stamp = build_dir / "build.json"
    done = LlamaCppBuild(version, isa, source_dir, build_dir, flags, 0.0)
    if stamp.is_file() and json.loads(stamp.read_text()).get("flags") == list(flags) and done.llama_bench.is_file():
        return done
    started = time.perf_counter()
    logger.info("building llama.cpp %s (%s) in %s; several minutes on two cores", version, isa, build_dir)
    subprocess.run(
        ["cmake", "-S", str(source_dir), "-B", str(build_dir), "-G", "Ninja", *flags], check=True, stdout=sys.stderr
    )
    subprocess.run(
        ["cmake", "--build", str(build_dir), "-j", str(jobs or os.cpu_count() or 1), "--target", *TARGETS],
        check=True,
        stdout=sys.stderr,
    )
    stamp.write_text(json.dumps({"flags": list(flags), "version": version}))
    return LlamaCppBuild(version, isa, source_dir, build_dir, flags, round(time.perf_counter() - started, 1))
