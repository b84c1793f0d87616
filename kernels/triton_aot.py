"""Compile every Triton kernel ahead of time for real NVIDIA GPUs, on a machine without one.

The interpreter (``TRITON_INTERPRET=1``) checks what the kernels compute, not whether a GPU accepts them: a kernel
can pass every interpreter test and still fail to compile, spill registers to local memory, or ask for more shared
memory than a GPU has. Triton's compiler runs the whole NVIDIA pipeline (TTIR → TTGIR → LLVM IR → PTX → cubin, with
the ``ptxas`` that Triton ships) for a named target without a driver, so this module does that for every kernel:

1. **capture**: the host wrappers (``rmsnorm``, ``rope``, ``router``, ``attention``, ``attention_decode``,
   ``moe_decode``, ``moe_prefill``) are called on CPU tensors of gpt-oss-20b and -120b shapes with the kernel launch
   replaced by a recorder, so each launch carries exactly the arguments, block sizes and warps its dispatcher picks;
2. **compile** each distinct launch for ``sm_80`` (A100), ``sm_89`` (RTX 40xx) and ``sm_90`` (H100), and read the
   registers and spills from ``ptxas -v`` and the shared memory from the compiled kernel's metadata.

It needs Triton loaded as the real compiler, not the interpreter: run it as
``GPTOSS_KERNELS=triton python -m gpt_oss_desktop.kernels.triton_aot`` (``TRITON_INTERPRET`` unset), which prints the
report as JSON. ``tests/kernels/test_triton_aot.py`` runs it and fails on any spill or shared-memory overflow.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from gpt_oss_desktop.kernels import _triton
from gpt_oss_desktop.kernels import attention as attention_kernels
from gpt_oss_desktop.kernels import moe as moe_kernels
from gpt_oss_desktop.kernels import rmsnorm as rmsnorm_kernels
from gpt_oss_desktop.kernels import rope as rope_kernels
from gpt_oss_desktop.kernels import router as router_kernels
from gpt_oss_desktop.kernels.moe import Mxfp4Experts

logger = logging.getLogger(__name__)

TARGETS: dict[str, int] = {"sm_80": 80, "sm_89": 89, "sm_90": 90}
"""The GPUs compiled for: A100 (sm_80), RTX 40xx / L4 / L40 (sm_89), H100 / H200 (sm_90)."""

SHARED_MEMORY_LIMIT: dict[int, int] = {80: 163 * 1024, 89: 99 * 1024, 90: 227 * 1024}
"""Most shared memory one block may use per compute capability (the opt-in maximum, CUDA programming guide)."""

_TORCH_TO_TRITON = {
    torch.bfloat16: "bf16",
    torch.float16: "fp16",
    torch.float32: "fp32",
    torch.uint8: "u8",
    torch.int8: "i8",
    torch.int32: "i32",
    torch.int64: "i64",
    torch.bool: "i1",
}


@dataclass(frozen=True)
class ModelShape:
    """The sizes of one gpt-oss model that reach the kernels (both share all but the expert count)."""

    name: str
    num_experts: int
    hidden: int = 2880
    intermediate: int = 2880
    num_q_heads: int = 64
    num_kv_heads: int = 8
    head_dim: int = 64
    top_k: int = 4
    sliding_window: int = 128


SHAPES = (ModelShape("gpt-oss-20b", num_experts=32), ModelShape("gpt-oss-120b", num_experts=128))

PREFILL_TOKENS = 512
DECODE_CONTEXT = 4096
"""A 512-token prefill and one-token decode at a 4,096-token context: what the benchmarks measure."""


@dataclass(frozen=True)
class Launch:
    """One kernel launch as its dispatcher made it: what ``triton.compile`` needs to build the same binary."""

    kernel: str
    case: str  # which wrapper call made it, e.g. "gpt-oss-20b moe_prefill T=512"
    fn: Any  # the triton JITFunction
    signature: dict[str, str]
    constexprs: dict[tuple[int, ...], Any]
    attrs: dict[tuple[int, ...], list[list[Any]]]
    num_warps: int
    num_stages: int | None

    def key(self) -> tuple[object, ...]:
        return (
            self.kernel,
            tuple(self.signature.items()),
            tuple(sorted((k, repr(v)) for k, v in self.constexprs.items())),
            tuple(sorted((k, repr(v)) for k, v in self.attrs.items())),
            self.num_warps,
            self.num_stages,
        )


@dataclass(frozen=True)
class CompileReport:
    """What the compiler says about one launch on one target."""

    kernel: str
    case: str
    target: str
    registers: int
    spill_stores_bytes: int
    spill_loads_bytes: int
    shared_bytes: int
    shared_limit_bytes: int
    num_warps: int
    constexprs: dict[str, str]

    @property
    def spills(self) -> bool:
        return self.spill_stores_bytes > 0 or self.spill_loads_bytes > 0

    @property
    def shared_fits(self) -> bool:
        return self.shared_bytes <= self.shared_limit_bytes


class TritonNotCompilingError(RuntimeError):
    """Triton is not loaded as the compiler (missing, or loaded as the interpreter)."""


def _require_compiler() -> Any:
    triton = _triton.triton
    if triton is None:
        raise TritonNotCompilingError(f"triton is not loaded: {_triton.TRITON_IMPORT_ERROR}")
    from triton.runtime.jit import JITFunction

    if not isinstance(rmsnorm_kernels._rmsnorm_kernel, JITFunction):
        raise TritonNotCompilingError(
            f"the kernels were decorated for the interpreter; run with {_triton.INTERPRET_ENV} unset "
            f"and {_triton.BACKEND_ENV}=triton"
        )
    return triton


def _describe(
    fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, str], dict[Any, Any], dict[Any, Any]]:
    """Signature, constexprs and attributes of one call, specialised the way Triton's JIT specialises them."""
    signature: dict[str, str] = {}
    constexprs: dict[tuple[int, ...], Any] = {}
    attrs: dict[tuple[int, ...], list[list[Any]]] = {}
    for index, param in enumerate(fn.params):
        if index < len(args):
            value = args[index]
        elif param.name in kwargs:
            value = kwargs[param.name]
        else:
            value = param.default
        key = (index,)
        if param.is_constexpr:
            signature[param.name] = "constexpr"
            constexprs[key] = value
        elif isinstance(value, torch.Tensor):
            signature[param.name] = "*" + _TORCH_TO_TRITON[value.dtype]
            if value.data_ptr() % 16 == 0:  # the JIT marks 16-byte aligned pointers (it vectorises loads on it)
                attrs[key] = [["tt.divisibility", 16]]
        elif isinstance(value, bool):
            signature[param.name] = "i1"
        elif isinstance(value, int):
            if value == 1:  # the JIT turns an int argument equal to 1 into a constant
                signature[param.name] = "constexpr"
                constexprs[key] = 1
                continue
            signature[param.name] = "i32" if -(2**31) <= value < 2**31 else "i64"
            if value % 16 == 0:
                attrs[key] = [["tt.divisibility", 16]]
        elif isinstance(value, float):
            signature[param.name] = "fp32"
        else:
            raise TypeError(f"{fn.__name__}: argument {param.name} is a {type(value).__name__}, not a kernel argument")
    return signature, constexprs, attrs


@contextmanager
def _recording(case: list[str], launches: list[Launch]) -> Iterator[None]:
    """Replace kernel launches by a recorder, and the wrappers' "needs a CUDA tensor" checks by nothing."""
    from triton.runtime.jit import JITFunction

    def launcher(fn: Any, _grid: Any) -> Callable[..., None]:
        def record(*args: Any, **kwargs: Any) -> None:
            signature, constexprs, attrs = _describe(fn, args, kwargs)
            launches.append(
                Launch(
                    kernel=fn.__name__,
                    case=case[0],
                    fn=fn,
                    signature=signature,
                    constexprs=constexprs,
                    attrs=attrs,
                    num_warps=int(kwargs.get("num_warps", 4)),
                    num_stages=kwargs.get("num_stages"),
                )
            )

        return record

    saved_getitem = JITFunction.__getitem__
    patched = [
        (module, "check_kernel_device") for module in (rmsnorm_kernels, rope_kernels, router_kernels, moe_kernels)
    ]
    saved_checks = [(module, name, getattr(module, name)) for module, name in patched if hasattr(module, name)]
    JITFunction.__getitem__ = launcher
    for module, name, _ in saved_checks:
        setattr(module, name, lambda *_tensors: None)
    try:
        yield
    finally:
        JITFunction.__getitem__ = saved_getitem
        for module, name, original in saved_checks:
            setattr(module, name, original)


def _experts(num_experts: int, out_features: int, in_features: int) -> Mxfp4Experts:
    # torch.empty: the launches are recorded, never run, so the bytes are never read (and never touched in RAM).
    blocks = torch.empty((num_experts, out_features, in_features // 32, 16), dtype=torch.uint8)
    scales = torch.empty((num_experts, out_features, in_features // 32), dtype=torch.uint8)
    return Mxfp4Experts(blocks, scales)


def capture_launches(shapes: tuple[ModelShape, ...] = SHAPES, dtype: torch.dtype = torch.bfloat16) -> list[Launch]:
    """Every distinct kernel launch that prefill and decode of these models make."""
    _require_compiler()
    launches: list[Launch] = []
    case = [""]
    with _recording(case, launches):
        for shape in shapes:
            for tokens in (1, PREFILL_TOKENS):
                _capture_dense_ops(shape, tokens, dtype, case)
                _capture_moe(shape, tokens, dtype, case)
            _capture_attention(shape, dtype, case)
    distinct: dict[tuple[object, ...], Launch] = {}
    for launch in launches:
        distinct.setdefault(launch.key(), launch)
    return list(distinct.values())


def _capture_dense_ops(shape: ModelShape, tokens: int, dtype: torch.dtype, case: list[str]) -> None:
    x = torch.empty((tokens, shape.hidden), dtype=dtype)
    scale = torch.empty((shape.hidden,), dtype=dtype)
    case[0] = f"{shape.name} rmsnorm T={tokens}"
    rmsnorm_kernels.rmsnorm(x, scale)
    case[0] = f"{shape.name} add_rmsnorm T={tokens}"
    rmsnorm_kernels.add_rmsnorm(x, torch.empty_like(x), scale)
    case[0] = f"{shape.name} rope T={tokens}"
    # q and k come as views of the fused qkv projection output (their row stride is the whole qkv row).
    qkv_width = (shape.num_q_heads + 2 * shape.num_kv_heads) * shape.head_dim
    qkv = torch.empty((tokens, qkv_width), dtype=dtype)
    q = qkv[:, : shape.num_q_heads * shape.head_dim].view(tokens, shape.num_q_heads, shape.head_dim)
    table = torch.empty((tokens, shape.head_dim // 2), dtype=torch.float32)
    rope_kernels.rope(q, table, table, out=q)
    case[0] = f"{shape.name} router T={tokens}"
    router_kernels.router(
        x, torch.empty((shape.num_experts, shape.hidden), dtype=dtype), torch.empty(shape.num_experts), shape.top_k
    )


def _capture_moe(shape: ModelShape, tokens: int, dtype: torch.dtype, case: list[str]) -> None:
    mlp1 = _experts(shape.num_experts, 2 * shape.intermediate, shape.hidden)
    mlp2 = _experts(shape.num_experts, shape.hidden, shape.intermediate)
    x = torch.empty((tokens, shape.hidden), dtype=dtype)
    weights = torch.full((tokens, shape.top_k), 1.0 / shape.top_k)
    # Real expert choices: the prefill wrapper sorts tokens by expert into tiles on the host.
    generator = torch.Generator().manual_seed(0)
    indices = torch.stack(
        [torch.randperm(shape.num_experts, generator=generator)[: shape.top_k] for _ in range(tokens)]
    )
    bias1 = torch.empty((shape.num_experts, 2 * shape.intermediate), dtype=torch.float32)
    bias2 = torch.empty((shape.num_experts, shape.hidden), dtype=torch.float32)
    wrapper = moe_kernels.moe_decode if tokens <= moe_kernels.DECODE_MAX_TOKENS else moe_kernels.moe_prefill
    case[0] = f"{shape.name} {wrapper.__name__} T={tokens}"
    wrapper(x, weights, indices, mlp1, bias1, mlp2, bias2, 7.0, 1.702)


def _capture_attention(shape: ModelShape, dtype: torch.dtype, case: list[str]) -> None:
    heads, kv_heads, dim = shape.num_q_heads, shape.num_kv_heads, shape.head_dim
    sinks = torch.empty(heads, dtype=torch.float32)
    scale = dim**-0.5
    tokens = PREFILL_TOKENS
    q = torch.empty((tokens, heads, dim), dtype=dtype)
    k = torch.empty((tokens, kv_heads, dim), dtype=dtype)
    positions = torch.arange(tokens, dtype=torch.int64)
    for window in (shape.sliding_window, 0):
        case[0] = f"{shape.name} attention prefill T={tokens} window={window}"
        attention_kernels.attention(q, k, torch.empty_like(k), sinks, positions, positions, window, scale)
    one = torch.empty((1, heads, dim), dtype=dtype)
    slots = torch.zeros(1, dtype=torch.int64)
    for window, rows, ring in ((shape.sliding_window, shape.sliding_window, True), (0, DECODE_CONTEXT, False)):
        store = torch.empty((1, rows, kv_heads, dim), dtype=dtype)
        lengths = torch.full((1,), DECODE_CONTEXT, dtype=torch.int64)
        case[0] = f"{shape.name} attention decode context={DECODE_CONTEXT} window={window}"
        attention_kernels.attention_decode(
            one, store, torch.empty_like(store), sinks, slots, lengths, window, ring, scale
        )


_PTXAS_REGISTERS = re.compile(r"Used (\d+) registers")
_PTXAS_SPILLS = re.compile(r"(\d+) bytes spill stores, (\d+) bytes spill loads")


def parse_ptxas_usage(text: str) -> tuple[int, int, int]:
    """(registers, spill-store bytes, spill-load bytes) from ``ptxas -v`` output (the largest over its functions)."""
    registers = max((int(m) for m in _PTXAS_REGISTERS.findall(text)), default=-1)
    if registers < 0:
        raise ValueError(f"no register count in ptxas output: {text[:300]!r}")
    spills = [(int(stores), int(loads)) for stores, loads in _PTXAS_SPILLS.findall(text)]
    return registers, max((st for st, _ in spills), default=0), max((ld for _, ld in spills), default=0)


def _ptxas(capability: int) -> str:
    """The ptxas Triton itself uses for this compute capability (Triton ships two, for different PTX versions)."""
    _require_compiler()
    from triton.backends.nvidia.compiler import get_ptxas

    return str(get_ptxas(capability).path)


def compile_launch(launch: Launch, target: str) -> CompileReport:
    """Compile one captured launch for ``target`` (a key of TARGETS) and report its resource use."""
    triton = _require_compiler()
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    capability = TARGETS[target]
    options: dict[str, Any] = {"num_warps": launch.num_warps}
    if launch.num_stages is not None:
        options["num_stages"] = launch.num_stages
    source = ASTSource(launch.fn, launch.signature, launch.constexprs, launch.attrs)
    compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32), options=options)
    ptx = compiled.asm["ptx"]
    arch = re.search(r"^\.target\s+(sm_\w+)", ptx, re.MULTILINE)
    if arch is None:
        raise ValueError(f"{launch.kernel}: no .target line in the PTX")
    with tempfile.TemporaryDirectory() as folder:
        ptx_file = Path(folder) / f"{launch.kernel}.ptx"
        ptx_file.write_text(ptx)
        result = subprocess.run(
            [
                _ptxas(capability),
                "-v",
                f"--gpu-name={arch.group(1)}",
                "-o",
                str(Path(folder) / "out.cubin"),
                str(ptx_file),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    registers, spill_stores, spill_loads = parse_ptxas_usage(result.stdout + result.stderr)
    names = launch.fn.arg_names
    return CompileReport(
        kernel=launch.kernel,
        case=launch.case,
        target=target,
        registers=registers,
        spill_stores_bytes=spill_stores,
        spill_loads_bytes=spill_loads,
        shared_bytes=int(compiled.metadata.shared),
        shared_limit_bytes=SHARED_MEMORY_LIMIT[capability],
        num_warps=int(compiled.metadata.num_warps),
        constexprs={names[key[0]]: repr(value) for key, value in launch.constexprs.items()},
    )


def compile_all(
    targets: tuple[str, ...] = tuple(TARGETS), kernels: tuple[str, ...] | None = None
) -> list[CompileReport]:
    """Capture every launch of both models and compile each for every target (only ``kernels``, when given)."""
    reports = []
    for launch in capture_launches():
        if kernels is not None and launch.kernel not in kernels:
            continue
        for target in targets:
            reports.append(compile_launch(launch, target))
            logger.info("compiled %s (%s) for %s", launch.kernel, launch.case, target)
    return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Compile every Triton kernel for real GPUs; prints a JSON report.")
    parser.add_argument("--targets", nargs="+", choices=sorted(TARGETS), default=sorted(TARGETS))
    parser.add_argument("--kernels", nargs="+", help="compile only these kernels (e.g. _rmsnorm_kernel); default all")
    args = parser.parse_args(argv)
    try:
        reports = compile_all(tuple(args.targets), tuple(args.kernels) if args.kernels else None)
    except TritonNotCompilingError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    rows = [asdict(report) | {"spills": report.spills, "shared_fits": report.shared_fits} for report in reports]
    sys.stdout.write(json.dumps({"triton": _require_compiler().__version__, "compiles": rows}, indent=1) + "\n")
    return 0 if all(not r.spills and r.shared_fits for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
