"""Build, load and pick the fused CPU kernels' C++ extension, one variant per instruction-set level.

The C++ lives in ``kernels/cpu/`` (one file per kernel family, compiled as one unit through ``extension.cpp``; see
:data:`SOURCE_DIR`) and chooses its code path with the compiler's predefined macros (``__AVX512F__``,
``__AVX2__ && __FMA__``, ``__AVX512BF16__``, else portable C++). Instead of ``-march=native``, each level below compiles
those sources with explicit ``-m`` flags, so a variant built on one machine runs on any CPU that has its level, and
every path can be built and tested on a CPU that has it:

============  ===========================================================  =====================================
level         compiler flags (beyond ``-march=x86-64``)                    code path
============  ===========================================================  =====================================
avx512bf16    avx512 + ``-mavx512bf16``                                    AVX-512, ``vdpbf16ps`` for bf16 GEMVs
avx512        ``-mavx2 -mfma -mf16c -mavx512f -mavx512bw -mavx512vl``      AVX-512, fp32 FMAs only
              ``-mavx512dq``
avx2          ``-mavx2 -mfma -mf16c``                                      AVX2 + FMA
scalar        none (baseline x86-64; any CPU on other architectures)       portable C++, no intrinsics
============  ===========================================================  =====================================

At run time :func:`prepare` picks the best level this CPU has (its ``/proc/cpuinfo`` flags, else
``torch.backends.cpu.get_cpu_capability()``), builds that variant or loads its cached build, and makes it the one the
kernel wrappers call. Switches (read once, by the first :func:`prepare`):

- ``GPTOSS_CPU_ISA=avx512bf16|avx512|avx2|scalar`` forces a level; one this CPU lacks is refused (the kernels then
  report the reason and the engine uses the torch path).
- ``GPTOSS_CPU_FUSED=0`` switches every fused CPU kernel off (the engine uses the torch references).

Builds are cached under ``$TORCH_EXTENSIONS_DIR`` when set, else ``$XDG_CACHE_HOME/gpt-oss-desktop/torch_extensions``
(``~/.cache/...``), in a folder named after a hash of the sources (every ``.cpp`` and ``.h`` file's name and contents),
the flags, the level, the torch and Python versions and the install (the package's folder and ``sys.prefix``): two
installs (two virtualenvs) never share a build folder.
Each variant registers its ops under its own namespace (``torch.ops.gptoss_cpu_<level>``, passed to the compiler as
``-DGPTOSS_OP_NAMESPACE``, which also names the C++ namespace), so tests can load several levels into one process and
switch between them (:func:`use_level`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import torch

from gpt_oss_desktop.kernels.cpu_kernel_status import KernelState, KernelStatus

__all__ = [
    "BF16_PREFETCH_ENV",
    "DEFAULT_BF16_PREFETCH_BYTES",
    "FUSED_ENV",
    "ISA_ENV",
    "LEVELS",
    "SOURCE_DIR",
    "CpuInfo",
    "CpuIsaError",
    "IsaLevel",
    "KernelState",
    "KernelStatus",
    "active_level",
    "available",
    "bf16_prefetch_bytes",
    "build_error",
    "build_root",
    "compile_variant",
    "cpu_flags",
    "cpu_model_name",
    "cpu_vendor",
    "extension_name",
    "load_level",
    "ops",
    "prepare",
    "requested_level",
    "source_files",
    "status",
    "supported_levels",
    "switched_off",
    "use_level",
]

logger = logging.getLogger(__name__)

ISA_ENV: Final = "GPTOSS_CPU_ISA"
FUSED_ENV: Final = "GPTOSS_CPU_FUSED"
_NAMESPACE_PREFIX: Final = "gptoss_cpu_"
_APP_DIR_NAME: Final = "gpt-oss-desktop"  # the same folder name engine.paths uses (kernels/ cannot import engine/)

# Flags of every variant. -fopenmp: at::parallel_for is OpenMP in the prebuilt torch. -ffp-contract=off: GCC may
# otherwise fuse a plain-C++ `acc += w * x` into an FMA in one instantiation and not in another (it depends on the
# tuning and on how the loop was vectorised), so a bf16 GEMV row's K tail summed for a tile of 2 tokens differed from
# the same row alone (seen with AMD Zen 3 tuning at K = 2881). Intrinsic FMAs are unaffected; plain C++ arithmetic
# then rounds exactly as written, like the torch references. -Wall -Wextra: the sources compile without a warning at
# every level (tests/kernels/test_cpu_build.py builds each with -Werror); torch's own headers are -isystem, so their
# warnings stay out.
_COMMON_FLAGS: Final = ("-O3", "-ffp-contract=off", "-fopenmp", "-std=c++17", "-Wall", "-Wextra")

# The C++ sources, shipped as package data (pyproject.toml, packaging/gpt-oss-desktop.spec). extension.cpp is the one
# translation unit: it includes the kernel files (see its header for why one unit), and all of them go into the key.
SOURCE_DIR: Final = Path(__file__).resolve().parent / "cpu"
_UNIT: Final = "extension.cpp"
_SOURCE_SUFFIXES: Final = (".cpp", ".h")
_X86_BASE: Final = ("-march=x86-64", "-mtune=generic")
_AVX2: Final = ("-mavx2", "-mfma", "-mf16c")
_AVX512: Final = ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq")


@dataclass(frozen=True)
class IsaLevel:
    """One instruction-set level: the flags its variant is compiled with and the CPU flags it needs to run."""

    name: str
    cflags: tuple[str, ...]
    cpu_flags: frozenset[str]  # as /proc/cpuinfo spells them


LEVELS: Final[tuple[IsaLevel, ...]] = (  # best first
    IsaLevel(
        "avx512bf16",
        (*_X86_BASE, *_AVX2, *_AVX512, "-mavx512bf16"),
        frozenset({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16"}),
    ),
    IsaLevel(
        "avx512",
        (*_X86_BASE, *_AVX2, *_AVX512),
        frozenset({"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq"}),
    ),
    IsaLevel("avx2", (*_X86_BASE, *_AVX2), frozenset({"avx2", "fma", "f16c"})),
    IsaLevel("scalar", _X86_BASE, frozenset()),
)
LEVEL_NAMES: Final = tuple(level.name for level in LEVELS)
_BY_NAME: Final = {level.name: level for level in LEVELS}

# What torch's own CPU dispatch found, as /proc/cpuinfo flags: only used where /proc/cpuinfo cannot be read. torch's
# AVX512 capability means F/BW/VL/DQ + FMA; it never tells about AVX512-BF16, so that level is not assumed.
_TORCH_CAPABILITY_FLAGS: Final = {
    "AVX512": _BY_NAME["avx512"].cpu_flags,
    "AVX2": _BY_NAME["avx2"].cpu_flags,
}

# GPTOSS_BF16_PREFETCH=<bytes> sets how far ahead the bf16 GEMVs prefetch their weight rows (0: not at all); by default
# it depends on the CPU's vendor (bf16_prefetch_bytes). It never changes a result, only the speed.
BF16_PREFETCH_ENV: Final = "GPTOSS_BF16_PREFETCH"
DEFAULT_BF16_PREFETCH_BYTES: Final = 4096
_MAX_PREFETCH_BYTES: Final = 1 << 20

ProgressCallback = Callable[[str], None]


class CpuIsaError(ValueError):
    """``GPTOSS_CPU_ISA`` names an unknown level, or one this CPU does not have."""


# -- the CPU ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says of the first processor."""

    flags: frozenset[str]
    model: str  # "model name", e.g. "AMD EPYC 9R14"; empty where it has none
    vendor: str  # "vendor_id": "GenuineIntel", "AuthenticAMD", ...; empty where it has none


def _read_cpuinfo() -> CpuInfo | None:
    """The first processor's entry in /proc/cpuinfo, or None where it cannot be read (or lists no flags)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "flags", "vendor_id") and key not in fields:
                    fields[key] = value.strip()
                if len(fields) == 3:
                    break
    except OSError:
        return None
    if "flags" not in fields:
        return None
    return CpuInfo(frozenset(fields["flags"].split()), fields.get("model name", ""), fields.get("vendor_id", ""))


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags, spelled as /proc/cpuinfo does (empty when nothing can be found out)."""
    info = _read_cpuinfo()
    if info is not None:
        return info.flags
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # an old or unusual torch build: assume nothing
        return frozenset()
    return _TORCH_CAPABILITY_FLAGS.get(capability, frozenset())


def cpu_model_name() -> str:
    """The CPU's model name (for benchmark reports), or the platform's processor string."""
    info = _read_cpuinfo()
    return (info.model if info is not None and info.model else platform.processor()) or platform.machine()


def cpu_vendor() -> str:
    """The CPU's vendor id as /proc/cpuinfo spells it ("GenuineIntel", "AuthenticAMD"), or "" where unknown."""
    info = _read_cpuinfo()
    return info.vendor if info is not None else ""


def bf16_prefetch_bytes() -> int:
    """How far ahead (bytes) the bf16 GEMVs prefetch along their weight rows: ``GPTOSS_BF16_PREFETCH`` where set to
    a whole number from 0 (no prefetching) to 1 MiB, else 0 on AMD CPUs and 4096 on others.

    Why by vendor: on Intel server cores (a Xeon of the Emerald Rapids class) the hardware prefetchers alone streamed
    `mini`'s unembedding at two thirds of what 4 KiB-ahead prefetches give (49 vs 33 ms, 2 threads), while on AMD
    (a Zen 4 EPYC) the rows streamed 7-20 % faster with no software prefetch than with it (12 KiB ahead), and the
    same or faster on a Zen 3. See kernels/README.md ("bf16 GEMV, streaming").
    """
    raw = os.environ.get(BF16_PREFETCH_ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            value = -1
        if 0 <= value <= _MAX_PREFETCH_BYTES:
            return value
        logger.warning("%s=%r is not a byte count from 0 to %d; using the default", BF16_PREFETCH_ENV, raw,
                       _MAX_PREFETCH_BYTES)  # fmt: skip
    return 0 if cpu_vendor() == "AuthenticAMD" else DEFAULT_BF16_PREFETCH_BYTES


def _is_x86() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def supported_levels() -> tuple[str, ...]:
    """The levels this CPU can run, best first. Off x86-64 only ``scalar`` (the compiler's default target)."""
    if not _is_x86():
        return ("scalar",)
    flags = cpu_flags()
    return tuple(level.name for level in LEVELS if level.cpu_flags <= flags)


def requested_level() -> str:
    """The level to run: ``GPTOSS_CPU_ISA`` if set (checked), else the best this CPU has.

    Raises:
        CpuIsaError: the variable names an unknown level or one this CPU lacks.
    """
    supported = supported_levels()
    wanted = os.environ.get(ISA_ENV, "").strip().lower()
    if not wanted or wanted == "auto":
        return supported[0]
    if wanted not in _BY_NAME:
        raise CpuIsaError(f"{ISA_ENV}={wanted} is not a level; choose one of {', '.join(LEVEL_NAMES)} (or auto)")
    if wanted not in supported:
        raise CpuIsaError(f"{ISA_ENV}={wanted}: this CPU ({cpu_model_name()}) lacks it; it has {', '.join(supported)}")
    return wanted


def switched_off() -> bool:
    """Whether ``GPTOSS_CPU_FUSED`` switches the fused CPU kernels off (read at every call)."""
    return os.environ.get(FUSED_ENV, "1").strip().lower() in ("0", "false", "no", "off")


def _unsupported_reason() -> str | None:
    if sys.platform != "linux":
        # -fopenmp and the prebuilt torch's libgomp are what this build assumes; macOS clang and MSVC need other
        # flags that nobody has tested, so they use the torch path instead.
        return f"platform {sys.platform} is not supported (linux only)"
    if platform.machine().lower() not in ("x86_64", "amd64", "aarch64", "arm64"):
        return f"machine {platform.machine()} is not supported"
    return None


# -- building one variant -----------------------------------------------------------------------------------------


def build_root() -> Path:
    """Where the variants' build folders go: ``$TORCH_EXTENSIONS_DIR``, else the app's folder in the user cache."""
    override = os.environ.get("TORCH_EXTENSIONS_DIR")
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / _APP_DIR_NAME / "torch_extensions"


def _namespace(level: str, tag: str = "") -> str:
    return _NAMESPACE_PREFIX + level + (f"_{tag}" if tag else "")


def _flags(level: IsaLevel, namespace: str, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    return (*_COMMON_FLAGS, *(level.cflags if _is_x86() else ()), f"-DGPTOSS_OP_NAMESPACE={namespace}", *extra)


def source_files() -> tuple[Path, ...]:
    """The extension's C++ files (``.cpp`` and ``.h``) in :data:`SOURCE_DIR`, sorted by name.

    Raises:
        FileNotFoundError: the folder or its ``extension.cpp`` is missing (an install without the package data).
    """
    files = tuple(sorted(p for p in SOURCE_DIR.iterdir() if p.is_file() and p.suffix in _SOURCE_SUFFIXES))
    if SOURCE_DIR / _UNIT not in files:
        raise FileNotFoundError(f"{_UNIT} is missing from {SOURCE_DIR}")
    return files


def _install_key() -> str:
    # The folder this package runs from and the environment's prefix: a second checkout or virtualenv differs in
    # both, a rebuilt one at the same place in neither (and then the source/flags/torch parts of the key decide).
    return f"{Path(__file__).resolve().parent}\n{sys.prefix}"


def extension_name(level: str, *, extra_cflags: tuple[str, ...] = (), tag: str = "") -> str:
    """The build folder's (and library's) name: the namespace and a hash of everything the binary depends on."""
    namespace = _namespace(level, tag)
    digest = hashlib.sha256()
    for path in source_files():  # each file's name and bytes: editing, adding or renaming one changes the key
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    parts = (
        " ".join(_flags(_BY_NAME[level], namespace, extra_cflags)),
        level,
        torch.__version__,
        f"{sys.version_info.major}.{sys.version_info.minor}",
        _install_key(),
    )
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return f"{namespace}_{digest.hexdigest()[:16]}"


@dataclass(frozen=True)
class _Variant:
    status: KernelStatus
    ops: Any  # torch.ops.<namespace>, None unless ok


_LOCK = threading.RLock()
_variants: dict[str, _Variant] = {}


_ERROR_LINE = re.compile(r"\berror\b|not found|no such file|cannot|permission denied", re.IGNORECASE)


def short_reason(exc: BaseException) -> str:
    """One line saying why a build failed: torch's message holds the whole compiler output, whose first line is the
    compile command; the first line that names an error (``fatal error: …``, ``…: not found``) is the useful one."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines[1:]:
        if _ERROR_LINE.search(line) and not line.startswith(("FAILED:", "[", "ninja:")):
            return line
    return f"{type(exc).__name__}: {lines[0] if lines else 'no message'}"


def compile_variant(
    level: str,
    *,
    extra_cflags: tuple[str, ...] = (),
    tag: str = "",
    on_progress: ProgressCallback | None = None,
) -> tuple[KernelStatus, Any]:
    """Build (or load the cached build of) ``level``'s variant; returns its status and op namespace (None if failed).

    The kernels use :func:`load_level`, which calls this once per level. ``extra_cflags`` with a ``tag`` (which names
    a separate op namespace, ``gptoss_cpu_<level>_<tag>``) build another copy, e.g. tuned for another CPU model, as
    a test does to check that tuning never changes a result; tuning flags do not change which CPUs can run it.
    """
    if level not in _BY_NAME:
        raise CpuIsaError(f"unknown CPU level {level!r}; the levels are {', '.join(LEVEL_NAMES)}")
    namespace_name = _namespace(level, tag)
    try:
        name = extension_name(level, extra_cflags=extra_cflags, tag=tag)
    except OSError as exc:  # an install without its package data: say so rather than fail the caller
        return KernelStatus(KernelState.FAILED, level, 0.0, f"the C++ sources cannot be read: {exc}"), None
    build_dir = build_root() / name
    cached = (build_dir / f"{name}.so").exists()
    if not cached and on_progress is not None:
        on_progress(f"Building the CPU kernels for {level} (first run only)")
    start = time.perf_counter()
    try:
        from torch.utils.cpp_extension import load

        build_dir.mkdir(parents=True, exist_ok=True)
        load(
            name=name,
            sources=[str(SOURCE_DIR / _UNIT)],
            extra_cflags=list(_flags(_BY_NAME[level], namespace_name, extra_cflags)),
            extra_ldflags=["-fopenmp"],
            build_directory=str(build_dir),
            is_python_module=False,
            verbose=False,
        )
        namespace = getattr(torch.ops, namespace_name)
        compiled = str(namespace.isa())
        namespace.set_bf16_prefetch(bf16_prefetch_bytes())
    except Exception as exc:  # the build can fail in many ways (no compiler, no ninja, bad headers): all mean "no"
        seconds = time.perf_counter() - start
        logger.debug("building %s failed", name, exc_info=True)  # the whole compiler output
        return KernelStatus(KernelState.FAILED, level, seconds, short_reason(exc)), None
    seconds = time.perf_counter() - start
    if compiled != level:  # the flags did not select the intended code path: never run it as that level
        return KernelStatus(KernelState.FAILED, level, seconds, f"the {level} build compiled the {compiled} path"), None
    return KernelStatus(KernelState.READY if cached else KernelState.BUILT, level, seconds), namespace


def load_level(level: str, on_progress: ProgressCallback | None = None) -> KernelStatus:
    """Build (or load the cached build of) one level's variant, once per process; does not make it the active one.

    Raises:
        CpuIsaError: ``level`` is unknown or this CPU lacks it.
    """
    if level not in _BY_NAME:
        raise CpuIsaError(f"unknown CPU level {level!r}; the levels are {', '.join(LEVEL_NAMES)}")
    if level not in supported_levels():
        raise CpuIsaError(f"this CPU ({cpu_model_name()}) lacks {level}; it has {', '.join(supported_levels())}")
    with _LOCK:
        variant = _variants.get(level)
        if variant is None:
            variant = _Variant(*compile_variant(level, on_progress=on_progress))
            _variants[level] = variant
    return variant.status


# -- the process-wide choice ----------------------------------------------------------------------------------------


class _Active:
    """What :func:`prepare` decided (guarded by ``_LOCK``; read without it on the hot path)."""

    status: KernelStatus | None = None
    ops: Any = None


def prepare(on_progress: ProgressCallback | None = None) -> KernelStatus:
    """Make the fused CPU kernels ready: pick the level, build or load its variant. Once per process; never raises.

    ``on_progress(text)`` is called (on this thread) only when a build is needed, before it starts, so a caller can
    say that the first run takes a while. Blocks while another thread builds.
    """
    if _Active.status is not None:
        return _Active.status
    with _LOCK:
        if _Active.status is None:
            status, namespace = _prepare(on_progress)
            _Active.ops = namespace
            _Active.status = status
            if status.ok:
                logger.info("%s", status.summary())
            else:
                logger.warning("%s", status.summary())
    return _Active.status


def _prepare(on_progress: ProgressCallback | None) -> tuple[KernelStatus, Any]:
    reason = _unsupported_reason()
    if reason is None and switched_off():
        reason = f"switched off by {FUSED_ENV}=0"
    if reason is not None:
        return KernelStatus(KernelState.OFF, None, 0.0, reason), None
    try:
        level = requested_level()
    except CpuIsaError as exc:
        return KernelStatus(KernelState.FAILED, os.environ.get(ISA_ENV), 0.0, str(exc)), None
    status = load_level(level, on_progress)
    return status, _variants[level].ops


def status() -> KernelStatus | None:
    """What :func:`prepare` found, or None before it ran."""
    return _Active.status


def available() -> bool:
    """Whether the fused CPU kernels can be used here (prepares them on first call)."""
    return prepare().ok


def build_error() -> str | None:
    """Why :func:`available` is False (None before :func:`prepare` ran, or when the kernels are ready)."""
    current = _Active.status
    return None if current is None or current.ok else current.reason


def active_level() -> str | None:
    """The level the kernel wrappers call (None when the kernels are unavailable)."""
    current = prepare()
    return current.isa if current.ok else None


def ops() -> Any:
    """The active variant's op namespace. Raises RuntimeError when the kernels are unavailable here."""
    namespace = _Active.ops
    if namespace is None:
        current = prepare()
        namespace = _Active.ops
        if namespace is None:
            raise RuntimeError(f"fused CPU kernels unavailable: {current.reason}")
    return namespace


@contextlib.contextmanager
def use_level(level: str) -> Iterator[KernelStatus]:
    """Make ``level`` the active variant inside the block (for tests: one process, every level the CPU has).

    Raises:
        CpuIsaError: unknown level, or one this CPU lacks.
        RuntimeError: the variant could not be built (with the reason).
    """
    level_status = load_level(level)
    if not level_status.ok:
        raise RuntimeError(f"the {level} CPU kernels could not be built: {level_status.reason}")
    with _LOCK:
        saved = (_Active.status, _Active.ops)
        _Active.status, _Active.ops = level_status, _variants[level].ops
    try:
        yield level_status
    finally:
        with _LOCK:
            _Active.status, _Active.ops = saved
