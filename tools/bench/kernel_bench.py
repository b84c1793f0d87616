"""Per-kernel benchmark of the Triton path at gpt-oss shapes, and a whole-decode-step roofline estimate.

``gpt-oss-desktop-engine bench --kernels`` calls :func:`run_kernel_bench`. On a CUDA device every hot op of one layer is
timed with ``triton.testing.do_bench`` (CUDA events, L2 flushed before each run, so weights come from DRAM as they
do in a real decode step) at decode shapes (T = 1, and B = 3 for batched decode attention) and prefill shapes
(T = 512). Inputs are random; only ONE layer's MXFP4 experts are generated, so no checkpoint is needed and even the
120b preset fits in GPU memory.

Bytes and FLOPs per call come from the model in :mod:`tools.bench.traffic`. The decode-step estimate sums the
per-layer kernel times of one batch-1 step and compares it with the roofline ``bytes_per_token / peak_bandwidth``
(perf-anchors §2.1).

Without CUDA nothing is timed on a GPU: the result says so, still gives the byte/FLOP model at the preset's shapes,
and with ``TRITON_INTERPRET=1`` launches every kernel once at tiny shapes in the interpreter to prove it runs.

With or without a GPU, ``aot_compile`` reports each Triton kernel compiled ahead of time for sm_80/sm_89/sm_90
(registers, spills, shared memory against the target's limit; :mod:`tools.bench.aot_report`).
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from gpt_oss_desktop.engine.checkpoint.names import canonical_specs
from gpt_oss_desktop.engine.checkpoint.presets import get_preset
from gpt_oss_desktop.engine.checkpoint.synthetic import random_tensor
from gpt_oss_desktop.engine.config import ModelConfig
from gpt_oss_desktop.engine.errors import EngineError
from gpt_oss_desktop.kernels.moe import Mxfp4Experts
from gpt_oss_desktop.kernels.rope import rope_cos_sin, yarn_inv_freq
from tools.bench.aot_report import AOT_TARGETS, aot_compile_report
from tools.bench.traffic import (
    Traffic,
    attention_decode_traffic,
    attention_prefill_traffic,
    linear_traffic,
    make_traffic,
    model_bytes_per_token,
    moe_traffic,
    rmsnorm_traffic,
    roofline_bytes_per_token,
    rope_traffic,
    router_traffic,
)

logger = logging.getLogger(__name__)

DECODE_BATCH = 3  # the low/medium/high-effort batch a later issue decodes together
PREFILL_TOKENS = 512
# Interpreter smoke shapes: small enough that every kernel launches in well under a second on a laptop CPU.
SMOKE_PRESET = "tiny"
SMOKE_PREFILL_TOKENS = 16  # > 8, so the MoE takes its grouped-GEMM (prefill) form
SMOKE_CONTEXT = 32  # > the tiny preset's window of 8, so the ring path wraps
_PEAK_COPY_BYTES = 1 << 30
_NO_CUDA = "unmeasured (no CUDA device)"
_INTERPRETER_NOTE = (
    "interpreter timings: the Triton interpreter runs each program in numpy on the CPU; these times prove only "
    "that every kernel launches and say nothing about GPU speed"
)


# ================================================================================================ benchmark cases
@dataclass
class Case:
    """One timed call: a kernel at one shape, its traffic, and how often a batch-1 decode step makes it."""

    kernel: str
    phase: str  # "decode" (T = 1), "decode_b3" (batched decode attention), "prefill"
    backend: str  # "triton", or "torch" for the F.linear GEMVs the step also needs
    shape: str
    traffic: Traffic
    calls_per_token: float  # multiplicity in one batch-1 decode step (0: not part of it)
    run: Callable[[], Any]


def _randn(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype, scale: float = 1.0) -> torch.Tensor:
    return (torch.randn(shape, device=device) * scale).to(dtype)


def _routing(tokens: int, cfg: ModelConfig, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # Distinct experts per token (as top-k gives), uniformly random: a token's k experts are always k unique reads.
    scores = torch.rand(tokens, cfg.num_experts, device=device)
    _, indices = scores.topk(cfg.experts_per_token, dim=-1)
    weights = torch.softmax(torch.randn(tokens, cfg.experts_per_token, device=device), dim=-1)
    return weights, indices


def build_cases(
    cfg: ModelConfig, device: torch.device, *, context: int, prefill_tokens: int, dtype: torch.dtype = torch.bfloat16
) -> list[Case]:
    """Inputs at ``cfg``'s shapes on ``device`` and one :class:`Case` per kernel and phase.

    Layer 0's weights come from :mod:`engine.checkpoint.synthetic` (the experts as random MXFP4 bytes: one layer
    only); activations, KV stores and the unembedding are plain random tensors made on the device.
    """
    from gpt_oss_desktop.kernels import attention as attn_k
    from gpt_oss_desktop.kernels import moe as moe_k
    from gpt_oss_desktop.kernels import rmsnorm as norm_k
    from gpt_oss_desktop.kernels import rope as rope_k
    from gpt_oss_desktop.kernels import router as router_k

    specs = canonical_specs(cfg, mxfp4=True)

    meta = device.type == "meta"  # shapes only: the byte/FLOP model on a machine that runs nothing

    def weight(name: str, as_dtype: torch.dtype = dtype) -> torch.Tensor:
        spec = specs[f"block.0.{name}"]
        if meta:
            return torch.empty(spec.shape, dtype=torch.uint8 if spec.name.endswith(("blocks", "scales")) else as_dtype,
                               device=device)  # fmt: skip
        return random_tensor(spec, seed=0, dtype=as_dtype).to(device)

    h, i, layers = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers
    hq, hkv, d = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    a = torch.empty((), dtype=dtype).element_size()
    f32 = 4
    eps = cfg.rms_norm_eps
    sm_scale = d**-0.5
    norm_scale = weight("attn.norm.scale", torch.float32)
    sinks = weight("attn.sinks", torch.float32)
    qkv_w, qkv_b = weight("attn.qkv.weight"), weight("attn.qkv.bias")
    out_w, out_b = weight("attn.out.weight"), weight("attn.out.bias")
    gate_w, gate_b = weight("mlp.gate.weight"), weight("mlp.gate.bias")
    mlp1 = Mxfp4Experts(weight("mlp.mlp1_weight.blocks", torch.uint8), weight("mlp.mlp1_weight.scales", torch.uint8))
    mlp2 = Mxfp4Experts(weight("mlp.mlp2_weight.blocks", torch.uint8), weight("mlp.mlp2_weight.scales", torch.uint8))
    mlp1_b, mlp2_b = weight("mlp.mlp1_bias"), weight("mlp.mlp2_bias")
    concentration, low, high = cfg.yarn_parameters()
    inv_freq = yarn_inv_freq(d, cfg.rope_theta, cfg.rope_scaling_factor, low, high).to(device)
    sliding = sum(cfg.sliding_layers)
    full = layers - sliding
    cases: list[Case] = []

    for phase, tokens in (("decode", 1), ("prefill", prefill_tokens)):
        decode = phase == "decode"
        x = _randn((tokens, h), device, dtype)
        delta = _randn((tokens, h), device, dtype)
        positions = torch.arange(tokens, device=device) + (context - 1 if decode else 0)
        cos, sin = rope_cos_sin(positions, inv_freq, concentration)
        qkv = _randn((tokens, cfg.qkv_size), device, dtype)  # q/k as strided views of it, as the model passes them
        q_view = qkv[:, : cfg.q_size].view(tokens, hq, d)
        k_view = qkv[:, cfg.q_size : cfg.q_size + cfg.kv_size].view(tokens, hkv, d)
        cases += [
            Case("rmsnorm", phase, "triton", f"x[{tokens},{h}]",
                 rmsnorm_traffic(tokens, h, a, f32, fused_add=False), 1.0 if decode else 0.0,
                 partial(norm_k.rmsnorm, x, norm_scale, eps)),
            Case("add_rmsnorm", phase, "triton", f"x[{tokens},{h}]",
                 rmsnorm_traffic(tokens, h, a, f32, fused_add=True), 2.0 * layers if decode else 0.0,
                 partial(norm_k.add_rmsnorm, x, delta, norm_scale, eps)),
            Case("qkv_proj", phase, "torch", f"[{tokens},{h}]x[{cfg.qkv_size},{h}]ᵀ",
                 linear_traffic(tokens, cfg.qkv_size, h, a, bias=True), float(layers) if decode else 0.0,
                 partial(F.linear, x, qkv_w, qkv_b)),
            Case("rope_q", phase, "triton", f"q[{tokens},{hq},{d}]",
                 rope_traffic(tokens, hq, d, a, f32), float(layers) if decode else 0.0,
                 partial(rope_k.rope, q_view, cos, sin)),
            Case("rope_k", phase, "triton", f"k[{tokens},{hkv},{d}]",
                 rope_traffic(tokens, hkv, d, a, f32), float(layers) if decode else 0.0,
                 partial(rope_k.rope, k_view, cos, sin)),
            Case("out_proj", phase, "torch", f"[{tokens},{cfg.q_size}]x[{h},{cfg.q_size}]ᵀ",
                 linear_traffic(tokens, h, cfg.q_size, a, bias=True), float(layers) if decode else 0.0,
                 partial(F.linear, _randn((tokens, cfg.q_size), device, dtype), out_w, out_b)),
            Case("router", phase, "triton", f"x[{tokens},{h}] W[{cfg.num_experts},{h}] k={cfg.experts_per_token}",
                 router_traffic(tokens, cfg.num_experts, h, cfg.experts_per_token, a, gate_b.element_size()),
                 float(layers) if decode else 0.0,
                 partial(router_k.router, x, gate_w, gate_b, cfg.experts_per_token)),
        ]  # fmt: skip
        weights, indices = _routing(tokens, cfg, device)
        # Host sync, once, outside any timing. Meta tensors hold no routing: assume distinct experts per pair.
        used = min(cfg.num_experts, tokens * cfg.experts_per_token) if meta else int(torch.unique(indices).numel())
        form = "decode (GEMV)" if tokens <= moe_k.DECODE_MAX_TOKENS else "prefill (grouped GEMM)"
        cases.append(
            Case("moe", phase, "triton", f"x[{tokens},{h}] {used}/{cfg.num_experts} experts used, {form}",
                 moe_traffic(tokens, cfg.experts_per_token, used, h, i, a, mlp1_b.element_size()),
                 float(layers) if decode else 0.0,
                 partial(moe_k.moe, x, weights, indices, mlp1, mlp1_b, mlp2, mlp2_b,
                         cfg.swiglu_limit, cfg.swiglu_alpha))
        )  # fmt: skip
        if not decode:
            q, k, v = (_randn((tokens, heads, d), device, dtype) for heads in (hq, hkv, hkv))
            pos = torch.arange(tokens, device=device)
            for label, window in (("full", 0), ("sliding", cfg.sliding_window)):
                cases.append(
                    Case(f"attention_{label}", phase, "triton", f"T={tokens} Hq={hq} Hkv={hkv} D={d} window={window}",
                         attention_prefill_traffic(tokens, cfg, window, a, a), 0.0,
                         partial(attn_k.attention, q, k, v, sinks, pos, pos, window, sm_scale))
                )  # fmt: skip

    # Decode attention reads the cache store in place: full layers a [B, context] store, sliding layers a ring of
    # `window` rows, every sequence holding `context` tokens.
    for batch, phase in ((1, "decode"), (DECODE_BATCH, "decode_b3")):
        q = _randn((batch, hq, d), device, dtype)
        slots = torch.arange(batch, device=device)
        lengths = torch.full((batch,), context, dtype=torch.int64, device=device)
        for label, window, count in (("full", 0, full), ("sliding", cfg.sliding_window, sliding)):
            ring = window > 0
            rows = window if ring else context
            k_store = _randn((batch, rows, hkv, d), device, dtype)
            v_store = _randn((batch, rows, hkv, d), device, dtype)
            cases.append(
                Case(f"attention_decode_{label}", phase, "triton",
                     f"B={batch} context={context} store_rows={rows} window={window}",
                     attention_decode_traffic([context] * batch, cfg, window, rows, ring, a, a),
                     float(count) if batch == 1 else 0.0,
                     partial(attn_k.attention_decode, q, k_store, v_store, sinks, slots, lengths, window, ring,
                             sm_scale))
            )  # fmt: skip

    # The unembedding GEMV (torch, as in Model._unembed): the biggest single read of a decode step.
    unembedding = _randn((cfg.vocab_size, h), device, dtype, scale=h**-0.5)
    normed = _randn((1, h), device, dtype)
    unembed_traffic = linear_traffic(1, cfg.vocab_size, h, a, bias=False)
    unembed_traffic = make_traffic(
        unembed_traffic.flops, **unembed_traffic.parts, fp32_logits=cfg.vocab_size * f32
    )  # Model._unembed also writes the logits once more as fp32
    cases.append(
        Case("unembedding", "decode", "torch", f"[1,{h}]x[{cfg.vocab_size},{h}]ᵀ", unembed_traffic, 1.0,
             lambda: F.linear(normed, unembedding).float())
    )  # fmt: skip
    return cases


def _case_row(case: Case, seconds: float | None, runs: int | None, timing: str) -> dict[str, Any]:
    row: dict[str, Any] = {
        "kernel": case.kernel,
        "phase": case.phase,
        "backend": case.backend,
        "shape": case.shape,
        "bytes": case.traffic.bytes,
        "bytes_parts": case.traffic.parts,
        "flops": case.traffic.flops,
        "calls_per_decode_token": case.calls_per_token,
        timing: None if seconds is None else round(seconds * 1e6, 3),
    }
    if timing == "time_us":
        row["runs"] = runs
        row["gbs"] = None if not seconds else round(case.traffic.bytes / seconds / 1e9, 2)
        row["tflops"] = None if not seconds else round(case.traffic.flops / seconds / 1e12, 4)
    return row


# ================================================================================================ GPU timing
def _l2_flush_ms() -> float:
    """Cost of do_bench's L2 flush, which its own run-count estimate includes."""
    import triton

    driver = triton.runtime.driver.active
    cache = driver.get_empty_cache_for_benchmark()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        driver.clear_cache(cache)
    end.record()
    torch.cuda.synchronize()
    return float(start.elapsed_time(end)) / 5


def _time_cuda(fn: Callable[[], Any], iters: int, flush_ms: float) -> tuple[float, int]:
    """Median seconds per call over about ``iters`` L2-cold runs (CUDA events via do_bench), and the run count.

    do_bench takes a time budget, not a count, and sizes it from runs that include the L2 flush, so the budget is
    ``iters * (call + flush)`` from a short pre-measurement.
    """
    from triton.testing import do_bench

    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(3):
        fn()
    end.record()
    torch.cuda.synchronize()
    call_ms = max(float(start.elapsed_time(end)) / 3, 1e-4)
    times = do_bench(fn, warmup=max(1.0, 5 * call_ms), rep=iters * (call_ms + flush_ms), return_mode="all")
    return statistics.median(times) * 1e-3, len(times)


def measure_peak_gbs(device: torch.device, nbytes: int = _PEAK_COPY_BYTES, iters: int = 20) -> float:
    """Achievable DRAM bandwidth: a large device-to-device copy (bytes read + bytes written per second)."""
    src = torch.empty(nbytes, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    seconds, _ = _time_cuda(lambda: dst.copy_(src), iters, 0.0)
    return 2 * nbytes / seconds / 1e9


def _decode_step(
    cases: list[Case], times: dict[int, float], cfg: ModelConfig, context: int, peak_gbs: float
) -> dict[str, Any]:
    step_s = sum(times[index] * case.calls_per_token for index, case in enumerate(cases) if case.calls_per_token)
    kernel_bytes = sum(case.traffic.bytes * case.calls_per_token for case in cases)
    roofline = roofline_bytes_per_token(cfg, context)
    roofline_s = roofline["total"] / (peak_gbs * 1e9)
    return {
        "method": (
            "sum over one batch-1 step of (L2-cold median time x calls per token) of the per-layer ops at layer-0 "
            "shapes x layers, plus the unembedding GEMV; excludes launch gaps between kernels, the embedding "
            "lookup, RoPE tables and KV-cache writes"
        ),
        "context": context,
        "bytes_per_token": roofline["total"],
        "bytes_per_token_parts": roofline,
        "kernel_bytes_per_token": int(kernel_bytes),
        "peak_gbs": round(peak_gbs, 1),
        "roofline_s": roofline_s,
        "roofline_tok_s": round(1.0 / roofline_s, 1),
        "estimated_step_s": step_s,
        "estimated_tok_s": round(1.0 / step_s, 1),
        "achieved_gbs": round(roofline["total"] / step_s / 1e9, 1),
        "fraction_of_roofline": round(roofline_s / step_s, 4),
    }


def bench_model_decode(model_path: Path, *, context: int, iters: int, peak_gbs: float) -> dict[str, Any]:
    """Full ``Model.decode`` steps (batch 1, Triton backend) after a ``context``-token prompt: tok/s and the
    fraction of the roofline computed from this checkpoint's own tensors."""
    from gpt_oss_desktop.engine.loader import load_model
    from tools.bench.measure import random_prompt

    model = load_model(model_path, device="cuda")
    if model.ops.name != "triton":
        raise EngineError(f"the model runs the {model.ops.name!r} backend on CUDA; unset GPTOSS_KERNELS=torch")
    cache = model.new_cache(1, context + iters + 8)
    logits = model.prefill(random_prompt(context, model.config.vocab_size), cache)
    token = int(torch.argmax(logits))
    step_times: list[float] = []
    for step in range(iters + 3):
        torch.cuda.synchronize()
        started = time.perf_counter()
        token = int(torch.argmax(model.decode([token], cache, [0])[0]))  # the argmax read syncs, like a sampler
        if step >= 3:  # the first steps compile kernels and warm the allocator
            step_times.append(time.perf_counter() - started)
    step_s = statistics.median(step_times)
    per_token = model_bytes_per_token(model, context)
    roofline_s = per_token / (peak_gbs * 1e9)
    return {
        "model": str(model_path),
        "backend": model.ops.name,
        "context": context,
        "steps": len(step_times),
        "median_step_s": step_s,
        "tok_s": round(1.0 / step_s, 1),
        "bytes_per_token": per_token,
        "achieved_gbs": round(per_token / step_s / 1e9, 1),
        "fraction_of_roofline": round(roofline_s / step_s, 4),
    }


# ================================================================================================ entry point
def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET") == "1"


def _interpreter_smoke() -> dict[str, Any]:
    """Launch every case once at tiny shapes in the Triton interpreter; wall time labelled as such."""
    cfg = get_preset(SMOKE_PRESET)
    device = torch.device("cpu")
    torch.manual_seed(0)
    cases = build_cases(cfg, device, context=SMOKE_CONTEXT, prefill_tokens=SMOKE_PREFILL_TOKENS)
    rows = []
    for case in cases:
        started = time.perf_counter()
        result = case.run()
        seconds = time.perf_counter() - started
        outputs = result if isinstance(result, tuple) else (result,)
        row = _case_row(case, seconds, None, "interpreter_us")
        row["finite_output"] = all(bool(torch.isfinite(t.float()).all()) for t in outputs)
        rows.append(row)
    return {"preset": SMOKE_PRESET, "context": SMOKE_CONTEXT, "note": _INTERPRETER_NOTE, "kernels": rows}


def _byte_model(cfg: ModelConfig, context: int, prefill_tokens: int) -> list[dict[str, Any]]:
    """The byte/FLOP table at the preset's shapes without allocating or running anything (meta tensors)."""
    cases = build_cases(cfg, torch.device("meta"), context=context, prefill_tokens=prefill_tokens)
    return [_case_row(case, None, None, "time_us") for case in cases]


def run_kernel_bench(
    preset: str = "20b",
    *,
    device: torch.device | str | None = None,
    iters: int = 100,
    context: int = 4096,
    peak_gbs: float | None = None,
    model_path: Path | None = None,
    prefill_tokens: int = PREFILL_TOKENS,
    aot_targets: tuple[str, ...] = AOT_TARGETS,
    aot_kernels: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Benchmark every Triton kernel (and the torch GEMVs of a decode step) at ``preset``'s shapes.

    On CUDA: per-kernel time, bytes, GB/s and TFLOP/s; the decode-step estimate against the roofline at
    ``peak_gbs`` (measured by a device-to-device copy when None); with ``model_path``, real ``Model.decode``
    steps too. Elsewhere: the byte/FLOP model only, ``gpu_speed`` says why, and with ``TRITON_INTERPRET=1`` an
    interpreter smoke run at tiny shapes.

    Everywhere: ``aot_compile``, each Triton kernel compiled ahead of time for ``aot_targets`` (all kernels, or
    ``aot_kernels``) with registers, spills and shared memory against the target's limit (no GPU needed).
    """
    if iters <= 0 or context <= 0 or prefill_tokens <= 0:
        raise EngineError("--iters, --context and the prefill length must be positive")
    if peak_gbs is not None and peak_gbs <= 0:
        raise EngineError("--peak-gbs must be positive")
    cfg = get_preset(preset)
    resolved = torch.device(device) if device is not None else None
    if resolved is None:
        resolved = torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    report: dict[str, Any] = {"preset": preset, "context": context, "prefill_tokens": prefill_tokens}
    report["aot_compile"] = aot_compile_report(aot_targets, aot_kernels)

    if resolved.type != "cuda" or _interpreting():
        report["device"] = resolved.type
        report["gpu_speed"] = (
            _NO_CUDA
            if resolved.type != "cuda"
            else "unmeasured (TRITON_INTERPRET=1: the kernels run in the interpreter)"
        )
        report["kernels"] = _byte_model(cfg, context, prefill_tokens)
        per_token = roofline_bytes_per_token(cfg, context)
        report["decode_step"] = {"context": context, "bytes_per_token": per_token["total"],
                                 "bytes_per_token_parts": per_token}  # fmt: skip
        if peak_gbs is not None:
            report["decode_step"]["peak_gbs"] = peak_gbs
            report["decode_step"]["roofline_tok_s"] = round(peak_gbs * 1e9 / per_token["total"], 1)
        if model_path is not None:
            report["model_decode"] = f"skipped: {report['gpu_speed']}"
        if _interpreting():
            report["interpreter_smoke"] = _interpreter_smoke()
        else:
            report["interpreter_smoke"] = "skipped: set TRITON_INTERPRET=1 to launch each kernel in the interpreter"
        return report

    report["device"] = f"{resolved} ({torch.cuda.get_device_name(resolved)})"
    report["gpu_speed"] = "measured"
    if peak_gbs is None:
        peak_gbs = measure_peak_gbs(resolved)
        report["peak_gbs_source"] = f"measured: device-to-device copy of {_PEAK_COPY_BYTES >> 20} MiB (read + write)"
    else:
        report["peak_gbs_source"] = "--peak-gbs"
    report["peak_gbs"] = round(peak_gbs, 1)
    torch.manual_seed(0)
    cases = build_cases(cfg, resolved, context=context, prefill_tokens=prefill_tokens)
    flush_ms = _l2_flush_ms()
    times: dict[int, float] = {}
    rows = []
    for index, case in enumerate(cases):
        seconds, runs = _time_cuda(case.run, iters, flush_ms)
        times[index] = seconds
        rows.append(_case_row(case, seconds, runs, "time_us"))
        logger.info("%s/%s: %.2f us", case.kernel, case.phase, seconds * 1e6)
    report["kernels"] = rows
    report["decode_step"] = _decode_step(cases, times, cfg, context, peak_gbs)
    del cases
    torch.cuda.empty_cache()
    if model_path is not None:
        report["model_decode"] = bench_model_decode(model_path, context=context, iters=iters, peak_gbs=peak_gbs)
    return report
