"""Fused MXFP4 dequant + GEMV / small GEMM for the CPU decode path (a C++ extension built at first use).

``mxfp4_linear(x, blocks, scales, bias)`` computes ``x @ dequantize_mxfp4(blocks, scales).T + bias`` without ever
materialising the dequantised weight: each packed group of 32 weights is decoded in registers (the 16-entry E2M1 table
lives in one vector register), multiplied by its power-of-two scale and reduced against ``x`` with fp32 accumulation.
Output rows are split across threads with ``at::parallel_for``. The point is that decode is bandwidth-bound: an expert
matrix is ~9 MB packed, so the kernel should run near memory speed instead of paying for a 33 MB bf16 copy per expert.

The C++ source is embedded here (not shipped as a ``.cpp``) so it always travels with the module, whatever the
packaging's package-data says. The AVX-512 path (with or without AVX512-BF16), the AVX2 path or the portable scalar
path is chosen by the compiler's predefined macros; ``kernels.cpu_build`` compiles one variant per instruction-set
level with explicit ``-m`` flags, picks the best level this CPU has at run time (``GPTOSS_CPU_ISA`` forces one) and
caches the builds per source, flags, level, torch version and install.

Meant for small ``T`` (decode: 1..16 tokens); the weights are re-decoded (from L2) for every 4 tokens, so large
prefill batches should use ``dequantize_mxfp4`` + a BLAS matmul instead.

The same extension also holds the other fused kernels of CPU decode (one build for all):
- ``bf16_linear(x, weight, bias)``, a streaming GEMV for the dense bf16 projections of decode (attention qkv/out,
  router, unembedding): measured here at T=1 it reads weights at ~25 GB/s where ``F.linear``'s oneDNN path reached
  ~16 GB/s;
- ``moe_mxfp4(...)``, the whole MoE MLP (mlp1, SwiGLU, mlp2, weighted sum) of a decode-sized batch in one call;
- ``attention_decode(...)``, decode attention straight from the KV cache store;
- RMSNorm and RoPE (``kernels.cpu_elementwise``; their C++ lives in ``kernels._cpu_elementwise_cpp``).

Decode-sized calls give each token (sequence) a result independent of the rest of the batch, bit for bit, so batched
greedy decoding picks exactly the tokens single-sequence decoding picks.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from gpt_oss_desktop.kernels import cpu_build
from gpt_oss_desktop.kernels._cpu_elementwise_cpp import CPP_SOURCE as ELEMENTWISE_CPP_SOURCE
from gpt_oss_desktop.kernels.mxfp4 import FP4_VALUES, MXFP4_BLOCK

__all__ = [
    "attention_decode",
    "available",
    "bf16_linear",
    "build_error",
    "extension_ops",
    "extension_source",
    "isa",
    "moe_mxfp4",
    "mxfp4_linear",
]

logger = logging.getLogger(__name__)

# The kernel. Layout contract with the host wrapper: x is deinterleaved per group of 32 into [16 even, 16 odd]
# elements, so that the low nibbles of a group's 16 bytes meet the even elements and the high nibbles the odd ones
# without any in-register shuffling of the activations.
_CPP_SOURCE = r"""
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <tuple>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace {

alignas(64) constexpr float kFp4[16] = {FP4_TABLE};

// Token tile: up to this many tokens share one decode of a weight row. The tile's fp32 activations (11.5 KB per token
// at K=2880) must stay in L1 while a row chunk streams past; 8 tokens measured slower per token than 4.
constexpr int kMaxTile = 4;

// Software prefetch distance along a thread's weight stream: the hardware prefetcher alone left the kernel at ~60%
// of the DRAM read bandwidth; a couple of rows ahead keeps enough lines in flight.
constexpr int kPrefetchBytes = 2048;

// 2^(s - 127) for every scale byte. std::ldexp is exact: s = 0 gives the subnormal 2^-127 and s = 255 gives +inf,
// which is what the fp32 torch reference (torch.pow(2., s - 127)) produces too.
struct ScaleTable {
  float v[256];
  ScaleTable() {
    for (int s = 0; s < 256; ++s) v[s] = std::ldexp(1.0f, s - 127);
  }
};

const float* scale_table() {
  static const ScaleTable table;
  return table.v;
}

#if defined(__AVX512F__)
constexpr const char* kIsa = "avx512";

// One output row for TT tokens. blk: [G, 16] bytes, sc: [G], xp: [TT][G * 32] deinterleaved, rows xstride apart.
// With kRowExact every token's sum is formed in exactly the order a lone token's is, so a token's result does not
// depend on which other tokens share its tile: batched decode then equals single-sequence decode bit for bit.
// Without it (prefill), several tokens share one scaling of the decoded weights, which is cheaper per token.
template <int TT, bool kRowExact = false>
inline void row_dot(const uint8_t* blk, const uint8_t* sc, int64_t G, const float* xp, int64_t xstride,
                    const float* stab, float* res) {
  const __m512 lut = _mm512_load_ps(kFp4);
  if constexpr (TT == 1 || kRowExact) {
    // Scale each group's partial sum (1 op) instead of both weight vectors (2 ops), and use two accumulators on
    // alternating groups so the FMA latency chain does not limit throughput.
    __m512 acc0[TT];
    __m512 acc1[TT];
    for (int t = 0; t < TT; ++t) {
      acc0[t] = _mm512_setzero_ps();
      acc1[t] = _mm512_setzero_ps();
    }
    int64_t g = 0;
    for (; g + 2 <= G; g += 2) {
      _mm_prefetch(reinterpret_cast<const char*>(blk + 16 * g + kPrefetchBytes), _MM_HINT_T0);
      const __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * g)));
      const __m512i v1 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * g + 16)));
      // vpermps only reads index bits 0..3, so the low nibble needs no mask.
      const __m512 w0_lo = _mm512_permutexvar_ps(v0, lut);
      const __m512 w1_lo = _mm512_permutexvar_ps(v1, lut);
      const __m512 w0_hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), lut);
      const __m512 w1_hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v1, 4), lut);
      const __m512 s0 = _mm512_set1_ps(stab[sc[g]]);
      const __m512 s1 = _mm512_set1_ps(stab[sc[g + 1]]);
#pragma GCC unroll 4
      for (int t = 0; t < TT; ++t) {
        const float* xg = xp + t * xstride + 32 * g;
        __m512 p0 = _mm512_mul_ps(w0_lo, _mm512_loadu_ps(xg));
        __m512 p1 = _mm512_mul_ps(w1_lo, _mm512_loadu_ps(xg + 32));
        p0 = _mm512_fmadd_ps(w0_hi, _mm512_loadu_ps(xg + 16), p0);
        p1 = _mm512_fmadd_ps(w1_hi, _mm512_loadu_ps(xg + 48), p1);
        acc0[t] = _mm512_fmadd_ps(p0, s0, acc0[t]);
        acc1[t] = _mm512_fmadd_ps(p1, s1, acc1[t]);
      }
    }
    for (; g < G; ++g) {
      const __m512i v0 = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * g)));
      const __m512 w0_lo = _mm512_permutexvar_ps(v0, lut);
      const __m512 w0_hi = _mm512_permutexvar_ps(_mm512_srli_epi32(v0, 4), lut);
      const __m512 s0 = _mm512_set1_ps(stab[sc[g]]);
      for (int t = 0; t < TT; ++t) {
        const float* xg = xp + t * xstride + 32 * g;
        __m512 p0 = _mm512_mul_ps(w0_lo, _mm512_loadu_ps(xg));
        p0 = _mm512_fmadd_ps(w0_hi, _mm512_loadu_ps(xg + 16), p0);
        acc0[t] = _mm512_fmadd_ps(p0, s0, acc0[t]);
      }
    }
    for (int t = 0; t < TT; ++t) res[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[t], acc1[t]));
  } else {
    // Several tokens: scale the decoded weights once (exact: power of two) and reuse them for every token.
    __m512 acc_lo[TT];
    __m512 acc_hi[TT];
    for (int t = 0; t < TT; ++t) {
      acc_lo[t] = _mm512_setzero_ps();
      acc_hi[t] = _mm512_setzero_ps();
    }
    for (int64_t g = 0; g < G; ++g) {
      if ((g & 1) == 0) _mm_prefetch(reinterpret_cast<const char*>(blk + 16 * g + kPrefetchBytes), _MM_HINT_T0);
      const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * g)));
      const __m512 s = _mm512_set1_ps(stab[sc[g]]);
      const __m512 w_lo = _mm512_mul_ps(_mm512_permutexvar_ps(v, lut), s);
      const __m512 w_hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), lut), s);
#pragma GCC unroll 4
      for (int t = 0; t < TT; ++t) {
        const float* xg = xp + t * xstride + 32 * g;
        acc_lo[t] = _mm512_fmadd_ps(w_lo, _mm512_loadu_ps(xg), acc_lo[t]);
        acc_hi[t] = _mm512_fmadd_ps(w_hi, _mm512_loadu_ps(xg + 16), acc_hi[t]);
      }
    }
    for (int t = 0; t < TT; ++t) res[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc_lo[t], acc_hi[t]));
  }
}

#elif defined(__AVX2__) && defined(__FMA__)
constexpr const char* kIsa = "avx2";

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// vpermps on 8 lanes only covers the 8 magnitudes; the sign (code bit 3) is moved to the float sign bit and xored in.
inline __m256 decode8(__m256i codes, __m256 mag) {
  const __m256 m = _mm256_permutevar8x32_ps(mag, codes);
  const __m256i sign = _mm256_and_si256(_mm256_slli_epi32(codes, 28), _mm256_set1_epi32(INT32_MIN));
  return _mm256_xor_ps(m, _mm256_castsi256_ps(sign));
}

// Each token has its own accumulators and the same order for any TT, so kRowExact changes nothing here.
template <int TT, bool kRowExact = false>
inline void row_dot(const uint8_t* blk, const uint8_t* sc, int64_t G, const float* xp, int64_t xstride,
                    const float* stab, float* res) {
  const __m256 mag = _mm256_loadu_ps(kFp4);
  __m256 acc_lo[TT];
  __m256 acc_hi[TT];
  for (int t = 0; t < TT; ++t) {
    acc_lo[t] = _mm256_setzero_ps();
    acc_hi[t] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < G; ++g) {
    const __m256 s = _mm256_set1_ps(stab[sc[g]]);
    for (int h = 0; h < 2; ++h) {  // bytes 8h..8h+7 hold even/odd elements 8h..8h+7 of the deinterleaved x
      const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 16 * g + 8 * h)));
      const __m256 w_lo = _mm256_mul_ps(decode8(v, mag), s);
      const __m256 w_hi = _mm256_mul_ps(decode8(_mm256_srli_epi32(v, 4), mag), s);
      for (int t = 0; t < TT; ++t) {
        const float* xg = xp + t * xstride + 32 * g + 8 * h;
        acc_lo[t] = _mm256_fmadd_ps(w_lo, _mm256_loadu_ps(xg), acc_lo[t]);
        acc_hi[t] = _mm256_fmadd_ps(w_hi, _mm256_loadu_ps(xg + 16), acc_hi[t]);
      }
    }
  }
  for (int t = 0; t < TT; ++t) res[t] = hsum256(_mm256_add_ps(acc_lo[t], acc_hi[t]));
}

#else
constexpr const char* kIsa = "scalar";

// Each token has its own accumulators and the same order for any TT, so kRowExact changes nothing here.
template <int TT, bool kRowExact = false>
inline void row_dot(const uint8_t* blk, const uint8_t* sc, int64_t G, const float* xp, int64_t xstride,
                    const float* stab, float* res) {
  float acc[TT] = {};
  for (int64_t g = 0; g < G; ++g) {
    const float s = stab[sc[g]];
    float w_lo[16];
    float w_hi[16];
    for (int j = 0; j < 16; ++j) {
      const uint8_t b = blk[16 * g + j];
      w_lo[j] = kFp4[b & 0x0F] * s;
      w_hi[j] = kFp4[b >> 4] * s;
    }
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + 32 * g;
      float a = 0.0f;
      for (int j = 0; j < 16; ++j) a += w_lo[j] * xg[j] + w_hi[j] * xg[16 + j];
      acc[t] += a;
    }
  }
  for (int t = 0; t < TT; ++t) res[t] = acc[t];
}
#endif


// ---- bf16 GEMV ----
// A bf16 weight row is read 32 values (one cache line) at a time as 16 uint32 lanes: shifting a lane left by 16
// gives the even element as fp32, masking off its low half gives the odd one. That is exactly the [16 even, 16 odd]
// layout `deinterleave` gives x, so the widening costs two integer ops per 32 weights and no shuffles.
// w: one row of K bf16 bits; xp: [TT][K] prepared by `deinterleave`, rows xstride apart.
constexpr int kBf16PrefetchBytes = 12288;

// Token tile of the bf16 GEMV: as many tokens (up to 4) as keep their fp32 activations within ~24 KB of L1, and
// at least 2. At K=2880 that is 2: with 4 tokens the activations (46 KB) fall out of L1 and the kernel measured ~15%
// slower at T=4 than two 2-token passes, the second re-reading the chunk's rows from L2. At small K (a batch of 3
// decode tokens on a narrow model) one pass serves all of them, so each weight row is loaded into registers once.
constexpr int kBf16MaxTile = 4;
constexpr int64_t kBf16TileBytes = 24 << 10;

// Up to this K the bf16 GEMV uses fp32 FMAs whatever x's dtype (bf16_rows_dot); above it, bf16 x takes vdpbf16ps
// where the CPU has it (bf16_row_dot_dp). See both kernels for the measurements behind the split.
constexpr int64_t kBf16FmaMaxK = 1024;

int bf16_tile(int64_t K) {
  return static_cast<int>(std::clamp<int64_t>(kBf16TileBytes / (4 * std::max<int64_t>(1, K)), 2, kBf16MaxTile));
}


inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

template <int TT>
inline void bf16_tail(const uint16_t* w, int64_t k0, int64_t K, const float* xp, int64_t xstride, float* res) {
  for (int64_t k = k0; k < K; ++k) {
    const float wk = bf16_bits_to_float(w[k]);
    for (int t = 0; t < TT; ++t) res[t] += wk * xp[t * xstride + k];
  }
}

#if defined(__AVX512F__)
// The 16-lane sums of up to 4 vectors at once, each with _mm512_reduce_add_ps's pairing (lane i with i+8, then i+4,
// i+2, i+1), so a token's sum is the same bits whether it is reduced alone or with others; sharing the shuffles
// between tokens matters at small K, where a row's reduction costs as much as its dot product.
template <int TT>
inline void reduce_lanes(const __m512* v, float* res) {
  static_assert(TT >= 1 && TT <= 4, "up to 4 vectors");
  const __m512 zero = _mm512_setzero_ps();
  const __m512 a = v[0];
  const __m512 b = TT > 1 ? v[1] : zero;
  const __m512 c = TT > 2 ? v[2] : zero;
  const __m512 d = TT > 3 ? v[3] : zero;
  // 16 -> 8 lanes: 128-bit quarters [q0 + q2, q1 + q3] of a, then of b (likewise c, d).
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  // 8 -> 4: quarter t of q holds vector t's (q0 + q2) + (q1 + q3).
  const __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  // 4 -> 2 -> 1 inside each quarter: lanes {0 + 2, 1 + 3}, then 0 + 1.
  const __m512 h = _mm512_add_ps(q, _mm512_permute_ps(q, 0x4E));
  const __m512 r = _mm512_add_ps(h, _mm512_permute_ps(h, 0xB1));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, r);
  for (int t = 0; t < TT; ++t) res[t] = lanes[4 * t];
}

// reduce_lanes over any number of vectors, four at a time.
template <int N>
inline void reduce_many(const __m512* v, float* res) {
  if constexpr (N > 4) {
    reduce_lanes<4>(v, res);
    reduce_many<N - 4>(v + 4, res + 4);
  } else {
    reduce_lanes<N>(v, res);
  }
}

// RR output rows (1 or 2) for TT tokens. w: RR rows, K apart; xp: [TT][K] deinterleaved fp32, rows xstride apart;
// res: [RR][kBf16MaxTile]. Each (row, token) sum has its own two accumulators (even / odd elements) that take the
// groups in order, whatever RR and TT are, so a token's result does not depend on the batch or on the row pairing.
// Two rows per pass halve the activation loads per weight, which is what bounds a small-K GEMV (a narrow model's
// unembedding) at 3-4 tokens. Plain FMAs rather than vdpbf16ps: on the machines measured here vdpbf16ps issues at
// one per ~2.2 cycles against two FMAs per cycle, so widening the weights (two cheap ops shared by every token) and
// using FMAs is faster from 2 tokens up and equal at 1.
template <int RR, int TT>
inline void bf16_rows_dot(const uint16_t* w, int64_t K, const float* xp, int64_t xstride, float (*res)[kBf16MaxTile]) {
  const int64_t G = K / 32;
  const __m512i hi_mask = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m512 acc_lo[RR][TT];
  __m512 acc_hi[RR][TT];
  for (int r = 0; r < RR; ++r) {
    for (int t = 0; t < TT; ++t) {
      acc_lo[r][t] = _mm512_setzero_ps();
      acc_hi[r][t] = _mm512_setzero_ps();
    }
  }
  for (int64_t g = 0; g < G; ++g) {
    __m512 w_lo[RR];
    __m512 w_hi[RR];
    for (int r = 0; r < RR; ++r) {
      const char* p = reinterpret_cast<const char*>(w + r * K + 32 * g);
      _mm_prefetch(p + kBf16PrefetchBytes, _MM_HINT_T0);
      const __m512i v = _mm512_loadu_si512(p);
      w_lo[r] = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));  // even elements
      w_hi[r] = _mm512_castsi512_ps(_mm512_and_si512(v, hi_mask));  // odd elements
    }
#pragma GCC unroll 4
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + 32 * g;
      const __m512 x_lo = _mm512_loadu_ps(xg);
      const __m512 x_hi = _mm512_loadu_ps(xg + 16);
      for (int r = 0; r < RR; ++r) {
        acc_lo[r][t] = _mm512_fmadd_ps(w_lo[r], x_lo, acc_lo[r][t]);
        acc_hi[r][t] = _mm512_fmadd_ps(w_hi[r], x_hi, acc_hi[r][t]);
      }
    }
  }
  // All RR x TT lane reductions share shuffles, four vectors at a time (each vector's pairing is fixed, see
  // reduce_lanes, so sharing does not change any sum).
  __m512 sums[RR * TT];
  for (int r = 0; r < RR; ++r)
    for (int t = 0; t < TT; ++t) sums[r * TT + t] = _mm512_add_ps(acc_lo[r][t], acc_hi[r][t]);
  float flat[RR * TT];
  reduce_many<RR * TT>(sums, flat);
  for (int r = 0; r < RR; ++r) {
    for (int t = 0; t < TT; ++t) res[r][t] = flat[r * TT + t];
    bf16_tail<TT>(w + r * K, 32 * G, K, xp, xstride, res[r]);
  }
}

template <int TT>
inline void bf16_row_dot(const uint16_t* w, int64_t K, const float* xp, int64_t xstride, float* res) {
  float one[1][kBf16MaxTile];
  bf16_rows_dot<1, TT>(w, K, xp, xstride, one);
  for (int t = 0; t < TT; ++t) res[t] = one[0][t];
}

#elif defined(__AVX2__) && defined(__FMA__)
template <int TT>
inline void bf16_row_dot(const uint16_t* w, int64_t K, const float* xp, int64_t xstride, float* res) {
  const int64_t G = K / 32;
  const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256 acc_lo[TT];
  __m256 acc_hi[TT];
  for (int t = 0; t < TT; ++t) {
    acc_lo[t] = _mm256_setzero_ps();
    acc_hi[t] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < G; ++g) {
    _mm_prefetch(reinterpret_cast<const char*>(w + 32 * g) + kBf16PrefetchBytes, _MM_HINT_T0);
    for (int h = 0; h < 2; ++h) {  // elements 16h..16h+15: their evens/odds are lanes 8h..8h+7 of each half of x
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * g + 16 * h));
      const __m256 w_lo = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
      const __m256 w_hi = _mm256_castsi256_ps(_mm256_and_si256(v, hi_mask));
      for (int t = 0; t < TT; ++t) {
        const float* xg = xp + t * xstride + 32 * g + 8 * h;
        acc_lo[t] = _mm256_fmadd_ps(w_lo, _mm256_loadu_ps(xg), acc_lo[t]);
        acc_hi[t] = _mm256_fmadd_ps(w_hi, _mm256_loadu_ps(xg + 16), acc_hi[t]);
      }
    }
  }
  for (int t = 0; t < TT; ++t) res[t] = hsum256(_mm256_add_ps(acc_lo[t], acc_hi[t]));
  bf16_tail<TT>(w, 32 * G, K, xp, xstride, res);
}

#else
template <int TT>
inline void bf16_row_dot(const uint16_t* w, int64_t K, const float* xp, int64_t xstride, float* res) {
  const int64_t G = K / 32;
  float acc[TT] = {};
  for (int64_t g = 0; g < G; ++g) {
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + 32 * g;
      float a = 0.0f;
      for (int j = 0; j < 16; ++j) {
        a += bf16_bits_to_float(w[32 * g + 2 * j]) * xg[j] + bf16_bits_to_float(w[32 * g + 2 * j + 1]) * xg[16 + j];
      }
      acc[t] += a;
    }
  }
  for (int t = 0; t < TT; ++t) res[t] = acc[t];
  bf16_tail<TT>(w, 32 * G, K, xp, xstride, res);
}
#endif

template <typename T>
inline float to_float(T v) {
  return static_cast<float>(v);
}

// x [T, K] -> fp32 [T, K] with each full group of 32 reordered to [even elements, odd elements].
template <typename T>
void deinterleave(const T* x, int64_t rows, int64_t K, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = x + r * K;
    float* dst = out + r * K;
    int64_t g = 0;
    for (; g + 32 <= K; g += 32) {
      for (int j = 0; j < 16; ++j) {
        dst[g + j] = to_float(src[g + 2 * j]);
        dst[g + 16 + j] = to_float(src[g + 2 * j + 1]);
      }
    }
    for (; g < K; ++g) dst[g] = to_float(src[g]);  // a tail shorter than a group (bf16 GEMV only) stays in order
  }
}

// The optional bias of either op, read in place (fp32 or bf16); null pointers when there is none.
struct BiasView {
  const float* f32 = nullptr;
  const c10::BFloat16* bf16 = nullptr;
};

BiasView view_bias(const std::optional<at::Tensor>& bias, int64_t N) {
  BiasView view;
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->device().is_cpu() && bias->dim() == 1 && bias->size(0) == N && bias->is_contiguous(),
                "bias must be a contiguous CPU [N] tensor");
    if (bias->scalar_type() == at::kFloat) {
      view.f32 = bias->data_ptr<float>();
    } else {
      TORCH_CHECK(bias->scalar_type() == at::kBFloat16, "bias must be float32 or bfloat16");
      view.bf16 = bias->data_ptr<c10::BFloat16>();
    }
  }
  return view;
}

// x [T, K] (fp32 or bf16) as fp32 in the per-32-group even/odd layout both kernels read.
std::vector<float> deinterleaved_activations(const at::Tensor& x, int64_t T, int64_t K) {
  std::vector<float> xp(static_cast<size_t>(T * K));
  if (x.scalar_type() == at::kFloat) {
    deinterleave(x.data_ptr<float>(), T, K, xp.data());
  } else {
    deinterleave(x.data_ptr<c10::BFloat16>(), T, K, xp.data());
  }
  return xp;
}

// Calls of up to this many tokens are decode steps (one token per sequence): they use kRowExact tiles, so a batched
// step gives each token what it would get alone. Longer calls (prefill) take the cheaper shared-scaling tiles.
constexpr int64_t kExactMaxTokens = 16;

template <bool kRowExact>
void dispatch_row(int tt, const uint8_t* blk, const uint8_t* sc, int64_t G, const float* xp, int64_t xstride,
                  const float* stab, float* res) {
  switch (tt) {
    case 4: row_dot<4, kRowExact>(blk, sc, G, xp, xstride, stab, res); break;
    case 2: row_dot<2, kRowExact>(blk, sc, G, xp, xstride, stab, res); break;
    default: row_dot<1, kRowExact>(blk, sc, G, xp, xstride, stab, res); break;
  }
}

at::Tensor mxfp4_linear(const at::Tensor& x, const at::Tensor& blocks, const at::Tensor& scales,
                        const std::optional<at::Tensor>& bias) {
  // The Python wrapper gives friendlier errors; these checks keep a direct torch.ops call from reading out of bounds.
  TORCH_CHECK(x.device().is_cpu() && blocks.device().is_cpu() && scales.device().is_cpu(), "CPU tensors expected");
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), "x must be a contiguous [T, K] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  TORCH_CHECK(blocks.scalar_type() == at::kByte && scales.scalar_type() == at::kByte, "blocks/scales must be uint8");
  TORCH_CHECK(blocks.dim() == 3 && blocks.size(2) == 16 && blocks.is_contiguous(),
              "blocks must be contiguous [N, G, 16]");
  const int64_t N = blocks.size(0);
  const int64_t G = blocks.size(1);
  const int64_t T = x.size(0);
  const int64_t K = G * 32;
  TORCH_CHECK(scales.dim() == 2 && scales.size(0) == N && scales.size(1) == G && scales.is_contiguous(),
              "scales must be contiguous [N, G]");
  TORCH_CHECK(x.size(1) == K, "x has ", x.size(1), " columns, weights have ", K);
  const BiasView bias_view = view_bias(bias, N);
  const float* bias_f = bias_view.f32;
  const c10::BFloat16* bias_bf = bias_view.bf16;

  at::Tensor out = at::empty({T, N}, x.options());
  if (T == 0 || N == 0) return out;

  const std::vector<float> xp = deinterleaved_activations(x, T, K);

  const bool exact = T <= kExactMaxTokens;
  const uint8_t* blk = blocks.data_ptr<uint8_t>();
  const uint8_t* sc = scales.data_ptr<uint8_t>();
  const float* stab = scale_table();
  const bool out_f32 = out.scalar_type() == at::kFloat;
  float* out_f = out_f32 ? out.data_ptr<float>() : nullptr;
  c10::BFloat16* out_bf = out_f32 ? nullptr : out.data_ptr<c10::BFloat16>();
  const float* xpp = xp.data();

  // Rows are handed out in chunks from a shared counter rather than split statically: on a busy desktop (or a 2-core
  // CI box) one OpenMP thread is often descheduled, and with a static split the whole call would wait a scheduler
  // tick (~4 ms) for it, while here the running threads take over its share. Chunks stay large enough that each
  // thread still streams long contiguous runs of weight bytes.
  const int64_t chunk = 64;
  const int64_t n_chunks = (N + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), n_chunks);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    float res[kMaxTile];
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t n0 = c * chunk;
      const int64_t n1 = std::min(N, n0 + chunk);
      // Token tiles outside, rows inside: a later tile re-reads the chunk's weights from L2 (~100 KB), while the
      // tile's activations stay in L1.
      for (int64_t t0 = 0; t0 < T;) {
        const int64_t left = T - t0;
        const int tt = left >= 4 ? 4 : left >= 2 ? 2 : 1;
        for (int64_t n = n0; n < n1; ++n) {
          if (exact) {
            dispatch_row<true>(tt, blk + n * G * 16, sc + n * G, G, xpp + t0 * K, K, stab, res);
          } else {
            dispatch_row<false>(tt, blk + n * G * 16, sc + n * G, G, xpp + t0 * K, K, stab, res);
          }
          const float b = bias_f ? bias_f[n] : (bias_bf ? static_cast<float>(bias_bf[n]) : 0.0f);
          for (int i = 0; i < tt; ++i) {
            const float v = res[i] + b;
            if (out_f32) {
              out_f[(t0 + i) * N + n] = v;
            } else {
              out_bf[(t0 + i) * N + n] = c10::BFloat16(v);  // round-to-nearest-even, like Tensor.to(bfloat16)
            }
          }
        }
        t0 += tt;
      }
    }
  });
  return out;
}

#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define GPTOSS_BF16_DOT 1
// bf16 x with AVX512-BF16 at large K: vdpbf16ps multiplies 32 bf16 pairs into 16 fp32 lanes (products exact, sums in
// fp32), so the weights need no widening and x stays bf16 ([T, K], no copy), half the cache footprint of fp32
// activations. It issues at only ~1 per 2.2 cycles here, but at K = 2880 three or four tokens' fp32 activations no
// longer fit L1 next to the weight stream, and this path measured faster there (12.5 vs 14.9 ms for 3 tokens on a
// 50k x 2880 matrix). Four accumulators per token, four groups per iteration, the same order for every tile size, so a
// token's result does not depend on the batch.
template <int TT>
inline void bf16_row_dot_dp(const uint16_t* w, int64_t K, const uint16_t* xb, int64_t xstride, float* res) {
  const int64_t G = K / 32;
  __m512 acc[TT][4];
  for (int t = 0; t < TT; ++t)
    for (int a = 0; a < 4; ++a) acc[t][a] = _mm512_setzero_ps();
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) {
    const char* p = reinterpret_cast<const char*>(w + 32 * g);
    for (int a = 0; a < 4; ++a) _mm_prefetch(p + kBf16PrefetchBytes + 64 * a, _MM_HINT_T0);
    __m512bh wv[4];
    for (int a = 0; a < 4; ++a) wv[a] = (__m512bh)_mm512_loadu_si512(p + 64 * a);
    for (int t = 0; t < TT; ++t) {
      const uint16_t* xg = xb + t * xstride + 32 * g;
      for (int a = 0; a < 4; ++a)
        acc[t][a] = _mm512_dpbf16_ps(acc[t][a], wv[a], (__m512bh)_mm512_loadu_si512(xg + 32 * a));
    }
  }
  for (; g < G; ++g) {
    const __m512bh wv = (__m512bh)_mm512_loadu_si512(w + 32 * g);
    for (int t = 0; t < TT; ++t)
      acc[t][0] = _mm512_dpbf16_ps(acc[t][0], wv, (__m512bh)_mm512_loadu_si512(xb + t * xstride + 32 * g));
  }
  __m512 sums[TT];
  for (int t = 0; t < TT; ++t)
    sums[t] = _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
  reduce_lanes<TT>(sums, res);
  for (int64_t k = 32 * G; k < K; ++k) {
    const float wk = bf16_bits_to_float(w[k]);
    for (int t = 0; t < TT; ++t) res[t] += wk * bf16_bits_to_float(xb[t * xstride + k]);
  }
}

void bf16_dispatch_row_dp(int tt, const uint16_t* w, int64_t K, const uint16_t* xb, float* res) {
  switch (tt) {
    case 4: bf16_row_dot_dp<4>(w, K, xb, K, res); break;
    case 3: bf16_row_dot_dp<3>(w, K, xb, K, res); break;
    case 2: bf16_row_dot_dp<2>(w, K, xb, K, res); break;
    default: bf16_row_dot_dp<1>(w, K, xb, K, res); break;
  }
}
#endif

// Rows n0..n1 for tokens t0..t0+tt of the bf16 GEMV into res_rows[n - n0][t] (fp32 sums, no bias). On AVX-512
// rows go two at a time (see bf16_rows_dot); a pair gives each row exactly what a lone row would get.
template <int TT>
void bf16_rows(const uint16_t* w, int64_t n0, int64_t n1, int64_t K, const float* xp,
               float (*res_rows)[kBf16MaxTile]) {
  int64_t n = n0;
#if defined(__AVX512F__)
  for (; n + 2 <= n1; n += 2) bf16_rows_dot<2, TT>(w + n * K, K, xp, K, res_rows + (n - n0));
#endif
  for (; n < n1; ++n) bf16_row_dot<TT>(w + n * K, K, xp, K, res_rows[n - n0]);
}

void bf16_dispatch_rows(int tt, const uint16_t* w, int64_t n0, int64_t n1, int64_t K, const float* xp,
                        float (*res_rows)[kBf16MaxTile]) {
  switch (tt) {
    case 4: bf16_rows<4>(w, n0, n1, K, xp, res_rows); break;
    case 3: bf16_rows<3>(w, n0, n1, K, xp, res_rows); break;
    case 2: bf16_rows<2>(w, n0, n1, K, xp, res_rows); break;
    default: bf16_rows<1>(w, n0, n1, K, xp, res_rows); break;
  }
}

at::Tensor bf16_linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       bool fp32_out) {
  TORCH_CHECK(x.device().is_cpu() && weight.device().is_cpu(), "CPU tensors expected");
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), "x must be a contiguous [T, K] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  TORCH_CHECK(weight.scalar_type() == at::kBFloat16 && weight.dim() == 2 && weight.is_contiguous(),
              "weight must be a contiguous bfloat16 [N, K] tensor");
  const int64_t N = weight.size(0);
  const int64_t K = weight.size(1);
  const int64_t T = x.size(0);
  TORCH_CHECK(x.size(1) == K, "x has ", x.size(1), " columns, the weight has ", K);
  const BiasView bias_view = view_bias(bias, N);
  const float* bias_f = bias_view.f32;
  const c10::BFloat16* bias_bf = bias_view.bf16;

  // fp32_out: the fp32 sums as they are (logits), instead of a rounding to x's dtype and a later widening copy.
  at::Tensor out = at::empty({T, N}, fp32_out ? x.options().dtype(at::kFloat) : x.options());
  if (T == 0 || N == 0) return out;

#ifdef GPTOSS_BF16_DOT
  // The path depends on K only, never on T, so a token gets the same bits in any batch.
  const bool dp = x.scalar_type() == at::kBFloat16 && K > kBf16FmaMaxK;  // fp32 x: bf16 would round it
  const uint16_t* xb = dp ? reinterpret_cast<const uint16_t*>(x.data_ptr<c10::BFloat16>()) : nullptr;
#else
  const bool dp = false;
#endif
  const std::vector<float> xp = dp ? std::vector<float>() : deinterleaved_activations(x, T, K);

  const uint16_t* w = reinterpret_cast<const uint16_t*>(weight.data_ptr<c10::BFloat16>());
  const bool out_f32 = out.scalar_type() == at::kFloat;
  float* out_f = out_f32 ? out.data_ptr<float>() : nullptr;
  c10::BFloat16* out_bf = out_f32 ? nullptr : out.data_ptr<c10::BFloat16>();
  const float* xpp = xp.data();
  const int tile = dp ? bf16_tile(K / 2) : bf16_tile(K);  // bf16 activations take half the L1 of fp32 ones

  // Same shared-counter scheduling as mxfp4_linear (see there); a chunk is ~64 KB of weights (11 rows at K=2880),
  // small enough that a descheduled thread's share is picked up, large enough to stream long contiguous runs.
  const int64_t chunk = std::max<int64_t>(1, (int64_t{64} << 10) / std::max<int64_t>(1, 2 * K));
  const int64_t n_chunks = (N + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), n_chunks);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<float> res_store(static_cast<size_t>(chunk * kBf16MaxTile));
    auto* res_rows = reinterpret_cast<float (*)[kBf16MaxTile]>(res_store.data());
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t n0 = c * chunk;
      const int64_t n1 = std::min(N, n0 + chunk);
      for (int64_t t0 = 0; t0 < T;) {
        const int64_t left = T - t0;
        const int tt = static_cast<int>(std::min<int64_t>(left, tile));
#ifdef GPTOSS_BF16_DOT
        if (dp) {
          for (int64_t n = n0; n < n1; ++n) bf16_dispatch_row_dp(tt, w + n * K, K, xb + t0 * K, res_rows[n - n0]);
        } else
#endif
        {
          bf16_dispatch_rows(tt, w, n0, n1, K, xpp + t0 * K, res_rows);
        }
        for (int64_t n = n0; n < n1; ++n) {
          const float b = bias_f ? bias_f[n] : (bias_bf ? static_cast<float>(bias_bf[n]) : 0.0f);
          for (int i = 0; i < tt; ++i) {
            const float v = res_rows[n - n0][i] + b;
            if (out_f32) {
              out_f[(t0 + i) * N + n] = v;
            } else {
              out_bf[(t0 + i) * N + n] = c10::BFloat16(v);
            }
          }
        }
        t0 += tt;
      }
    }
  });
  return out;
}

// ---- fused MoE for decode-sized batches ----
// One call does what moe_ref does with one fused GEMV per projection: route pairs (token, slot) to experts, mlp1,
// SwiGLU, mlp2 and the routing-weighted sum. Per layer that is two parallel regions instead of 2 x k kernel calls
// plus ~20 small torch ops (measured ~0.7 ms of overhead per layer on the 20b preset at batch 1). Intermediates are
// rounded to x's dtype at the same points as the torch reference (after each projection and each SwiGLU op), and every
// token's sums use kRowExact tiles, so a token's output does not depend on the rest of the batch.

inline float round_to(float v, bool bf16) { return bf16 ? static_cast<float>(c10::BFloat16(v)) : v; }

struct ExpertRuns {
  std::vector<int64_t> pair_of;  // [P] source pair (t * k + slot) of each sorted row, grouped by expert
  std::vector<int64_t> row_of;   // [P] sorted row of each pair
  std::vector<int64_t> expert;   // experts with at least one pair, ascending
  std::vector<int64_t> start;    // [expert.size() + 1] first sorted row of each
};

ExpertRuns sort_by_expert(const int64_t* idx, int64_t pairs, int64_t num_experts) {
  ExpertRuns runs;
  std::vector<int64_t> count(static_cast<size_t>(num_experts), 0);
  for (int64_t p = 0; p < pairs; ++p) {
    TORCH_CHECK(idx[p] >= 0 && idx[p] < num_experts, "expert index ", idx[p], " out of range [0, ", num_experts, ")");
    ++count[idx[p]];
  }
  std::vector<int64_t> offset(static_cast<size_t>(num_experts), 0);
  int64_t row = 0;
  for (int64_t e = 0; e < num_experts; ++e) {
    if (count[e] == 0) continue;
    runs.expert.push_back(e);
    runs.start.push_back(row);
    offset[e] = row;
    row += count[e];
  }
  runs.start.push_back(row);
  runs.pair_of.resize(static_cast<size_t>(pairs));
  runs.row_of.resize(static_cast<size_t>(pairs));
  for (int64_t p = 0; p < pairs; ++p) {  // stable: pairs of one expert keep token order
    const int64_t r = offset[idx[p]]++;
    runs.pair_of[r] = p;
    runs.row_of[p] = r;
  }
  return runs;
}

// out[r, n] = round(x[r] . W_e[n] + bias_e[n]) for the sorted rows of every used expert. x: [P][K] deinterleaved.
void expert_projection(const ExpertRuns& runs, const uint8_t* blocks, const uint8_t* scales, const BiasView& bias,
                       int64_t N, int64_t G, const float* x, bool bf16, float* out) {
  const int64_t K = G * 32;
  const float* stab = scale_table();
  constexpr int64_t chunk = 64;
  const int64_t chunks_per_expert = (N + chunk - 1) / chunk;
  const int64_t items = static_cast<int64_t>(runs.expert.size()) * chunks_per_expert;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), items);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    float res[kMaxTile];
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < items;
         item = next.fetch_add(1, std::memory_order_relaxed)) {
      const size_t u = static_cast<size_t>(item / chunks_per_expert);
      const int64_t e = runs.expert[u];
      const int64_t n0 = (item % chunks_per_expert) * chunk;
      const int64_t n1 = std::min(N, n0 + chunk);
      const uint8_t* blk = blocks + e * N * G * 16;
      const uint8_t* sc = scales + e * N * G;
      for (int64_t r0 = runs.start[u]; r0 < runs.start[u + 1];) {
        const int64_t left = runs.start[u + 1] - r0;
        const int tt = left >= 4 ? 4 : left >= 2 ? 2 : 1;
        for (int64_t n = n0; n < n1; ++n) {
          const float* xr = x + r0 * K;
          switch (tt) {
            case 4: row_dot<4, true>(blk + n * G * 16, sc + n * G, G, xr, K, stab, res); break;
            case 2: row_dot<2, true>(blk + n * G * 16, sc + n * G, G, xr, K, stab, res); break;
            default: row_dot<1, true>(blk + n * G * 16, sc + n * G, G, xr, K, stab, res); break;
          }
          const int64_t bi = e * N + n;
          const float b = bias.f32 ? bias.f32[bi] : (bias.bf16 ? static_cast<float>(bias.bf16[bi]) : 0.0f);
          for (int i = 0; i < tt; ++i) out[(r0 + i) * N + n] = round_to(res[i] + b, bf16);
        }
        r0 += tt;
      }
    }
  });
}

// gpt-oss SwiGLU of one row h [2I] (even = gate, odd = linear) into a [I], rounding after each op like the torch
// reference does on bf16 tensors.
void swiglu_row(const float* h, int64_t I, float limit, float alpha, bool bf16, float* a) {
  for (int64_t i = 0; i < I; ++i) {
    const float gate = std::min(h[2 * i], limit);  // NaN stays NaN, as with clamp
    const float lin = std::max(std::min(h[2 * i + 1], limit), -limit);
    const float z = round_to(alpha * gate, bf16);
    const float sig = round_to(1.0f / (1.0f + std::exp(-z)), bf16);
    a[i] = round_to(round_to(gate * sig, bf16) * round_to(lin + 1.0f, bf16), bf16);
  }
}

at::Tensor moe_mxfp4(const at::Tensor& x, const at::Tensor& indices, const at::Tensor& weights,
                     const at::Tensor& blocks1, const at::Tensor& scales1, const at::Tensor& bias1,
                     const at::Tensor& blocks2, const at::Tensor& scales2, const at::Tensor& bias2, double limit,
                     double alpha) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x must be a contiguous CPU [T, H] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  TORCH_CHECK(indices.scalar_type() == at::kLong && indices.dim() == 2 && indices.is_contiguous(),
              "indices must be contiguous int64 [T, k]");
  TORCH_CHECK(weights.scalar_type() == at::kFloat && weights.sizes() == indices.sizes() && weights.is_contiguous(),
              "weights must be contiguous float32 [T, k]");
  TORCH_CHECK(blocks1.scalar_type() == at::kByte && blocks1.dim() == 4 && blocks1.size(3) == 16 &&
                  blocks1.is_contiguous() && blocks2.scalar_type() == at::kByte && blocks2.dim() == 4 &&
                  blocks2.size(3) == 16 && blocks2.is_contiguous(),
              "blocks must be contiguous uint8 [E, N, G, 16]");
  const int64_t T = x.size(0);
  const int64_t H = x.size(1);
  const int64_t k = indices.size(1);
  const int64_t E = blocks1.size(0);
  const int64_t N1 = blocks1.size(1);
  const int64_t G1 = blocks1.size(2);
  const int64_t I = N1 / 2;
  const int64_t G2 = blocks2.size(2);
  TORCH_CHECK(indices.size(0) == T, "indices has ", indices.size(0), " rows for ", T, " tokens");
  TORCH_CHECK(G1 * 32 == H && N1 % 2 == 0 && blocks2.size(0) == E && blocks2.size(1) == H && G2 * 32 == I,
              "expert shapes do not fit x: mlp1 ", blocks1.sizes(), ", mlp2 ", blocks2.sizes(), ", H = ", H);
  TORCH_CHECK(scales1.scalar_type() == at::kByte && scales1.is_contiguous() && scales1.dim() == 3 &&
                  scales1.size(0) == E && scales1.size(1) == N1 && scales1.size(2) == G1,
              "scales1 must be contiguous uint8 [E, N1, G1]");
  TORCH_CHECK(scales2.scalar_type() == at::kByte && scales2.is_contiguous() && scales2.dim() == 3 &&
                  scales2.size(0) == E && scales2.size(1) == H && scales2.size(2) == G2,
              "scales2 must be contiguous uint8 [E, H, G2]");
  TORCH_CHECK(bias1.dim() == 2 && bias1.size(0) == E && bias2.dim() == 2 && bias2.size(0) == E &&
                  bias1.is_contiguous() && bias2.is_contiguous(),
              "biases must be contiguous [E, N]");  // contiguous, so the flat views below share their storage
  const BiasView b1 = view_bias(bias1.reshape({-1}), E * N1);
  const BiasView b2 = view_bias(bias2.reshape({-1}), E * H);
  const bool bf16 = x.scalar_type() == at::kBFloat16;

  at::Tensor out = at::empty({T, H}, x.options());
  if (T == 0) return out;
  const int64_t P = T * k;
  const ExpertRuns runs = sort_by_expert(indices.data_ptr<int64_t>(), P, E);

  // mlp1 input: each sorted row is its token's activations, deinterleaved.
  const std::vector<float> xt = deinterleaved_activations(x, T, H);
  std::vector<float> x1(static_cast<size_t>(P * H));
  for (int64_t r = 0; r < P; ++r) {
    std::memcpy(x1.data() + r * H, xt.data() + (runs.pair_of[r] / k) * H, sizeof(float) * H);
  }
  std::vector<float> h(static_cast<size_t>(P * N1));
  expert_projection(runs, blocks1.data_ptr<uint8_t>(), scales1.data_ptr<uint8_t>(), b1, N1, G1, x1.data(), bf16,
                    h.data());

  // SwiGLU per sorted row, then deinterleave for mlp2.
  std::vector<float> x2(static_cast<size_t>(P * I));
  at::parallel_for(0, P, 1, [&](int64_t r0, int64_t r1) {
    std::vector<float> a(static_cast<size_t>(I));
    for (int64_t r = r0; r < r1; ++r) {
      swiglu_row(h.data() + r * N1, I, static_cast<float>(limit), static_cast<float>(alpha), bf16, a.data());
      deinterleave(a.data(), 1, I, x2.data() + r * I);
    }
  });
  std::vector<float> y(static_cast<size_t>(P * H));
  expert_projection(runs, blocks2.data_ptr<uint8_t>(), scales2.data_ptr<uint8_t>(), b2, H, G2, x2.data(), bf16,
                    y.data());

  // Routing-weighted sum over each token's k experts, in fp32 and in routing order, rounded once.
  const float* w = weights.data_ptr<float>();
  float* out_f = bf16 ? nullptr : out.data_ptr<float>();
  c10::BFloat16* out_bf = bf16 ? out.data_ptr<c10::BFloat16>() : nullptr;
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t n = 0; n < H; ++n) {
      float acc = 0.0f;
      for (int64_t j = 0; j < k; ++j) acc += y[runs.row_of[t * k + j] * H + n] * w[t * k + j];
      if (bf16) {
        out_bf[t * H + n] = c10::BFloat16(acc);
      } else {
        out_f[t * H + n] = acc;
      }
    }
  }
  return out;
}

// ---- decode attention ----
// One query per sequence against its cached keys, like attention_decode_ref, without the reference's per-sequence
// gathers and fp32 copies of the whole visible cache (~15 torch ops per layer and sequence). One work item is one
// (sequence, KV head): each K/V row is read once and serves the G query heads that share it. Scores and softmax are in
// fp32, the sink joins the denominator only; each sequence's result is independent of the batch.

template <typename T>
inline float dot_f32(const float* q, const T* k, int64_t D) {
  // Independent lanes (the compiler vectorises this as one vector FMA per 16 elements).
  float part[16] = {};
  int64_t d = 0;
  for (; d + 16 <= D; d += 16)
    for (int i = 0; i < 16; ++i) part[i] += q[d + i] * static_cast<float>(k[d + i]);
  float sum = 0.0f;
  for (; d < D; ++d) sum += q[d] * static_cast<float>(k[d]);
  for (int i = 0; i < 16; ++i) sum += part[i];
  return sum;
}

#if defined(__AVX512F__)
// exp(x) for softmax arguments (x <= 0 after the max is subtracted; larger x also works up to ~88): Cephes' expf
// polynomial on the range-reduced argument, scaled by 2^n with vscalefps. Within ~2 ulp of std::exp; arguments below
// -104 give 0, as exp does in fp32, and NaN stays NaN.
inline __m512 exp_ps(__m512 x) {
  x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);  // max returns its second operand when that is NaN
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);  // x - n ln2, ln2 split in two for exactness
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

inline __m512 load16_f32(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 load16_f32(const c10::BFloat16* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// One (sequence, KV head) of decode attention, vectorised: the G query heads' scores against each visible key (K row
// widened once, shared by the G heads), a vectorised softmax with the sink in the denominator, and P.V with the G x 32
// accumulators in registers. Returns false for head shapes it does not take (D not a multiple of 16, D > 256 or
// G > 16); the caller then runs the scalar loop. scores: scratch, resized here.
template <typename T>
bool attention_item_avx512(const T* q, const T* kp, const T* vp, const float* sinks, int64_t slot, int64_t first,
                           int64_t n, int64_t S, int64_t Hkv, int64_t kvh, int64_t G, int64_t D, bool ring,
                           float sm_scale, std::vector<float>& scores, T* out) {
  if (D % 16 != 0 || D > 256 || G > 16 || n < 1) return false;
  const int64_t C = D / 16;
  alignas(64) float qf[16 * 256];
  for (int64_t i = 0; i < G * D; ++i) qf[i] = static_cast<float>(q[i]);
  const int64_t stride_n = ((n + 15) / 16) * 16;  // each head's scores padded to whole vectors
  scores.assign(static_cast<size_t>(G * stride_n), 0.0f);
  auto row = [&](const T* base, int64_t j) {
    const int64_t pos = first + j;
    return base + ((slot * S + (ring ? pos % S : pos)) * Hkv + kvh) * D;
  };
  // Scores: one K row against the G query heads, lane sums reduced four heads at a time.
  for (int64_t j = 0; j < n; ++j) {
    const T* krow = row(kp, j);
    __m512 kv[16];
    for (int64_t c = 0; c < C; ++c) kv[c] = load16_f32(krow + 16 * c);
    __m512 dots[16];
    for (int64_t g = 0; g < G; ++g) {
      __m512 acc = _mm512_mul_ps(_mm512_load_ps(qf + g * D), kv[0]);
      for (int64_t c = 1; c < C; ++c) acc = _mm512_fmadd_ps(_mm512_load_ps(qf + g * D + 16 * c), kv[c], acc);
      dots[g] = acc;
    }
    for (int64_t g = G; g < ((G + 3) / 4) * 4; ++g) dots[g] = _mm512_setzero_ps();
    float dot[16];
    for (int64_t g0 = 0; g0 < G; g0 += 4) reduce_lanes<4>(dots + g0, dot + g0);
    for (int64_t g = 0; g < G; ++g) scores[g * stride_n + j] = dot[g] * sm_scale;
  }
  // Softmax per head; padding lanes are masked out of the max and the sum and end up 0.
  float denom[16];
  const __mmask16 tail = static_cast<__mmask16>((n % 16) ? ((1u << (n % 16)) - 1u) : 0xFFFFu);
  for (int64_t g = 0; g < G; ++g) {
    float* sg = scores.data() + g * stride_n;
    __m512 m = _mm512_set1_ps(sinks[g]);
    for (int64_t j = 0; j < stride_n; j += 16) {
      const __mmask16 k = j + 16 <= n ? 0xFFFF : tail;
      m = _mm512_mask_max_ps(m, k, m, _mm512_loadu_ps(sg + j));
    }
    const __m512 mv = _mm512_set1_ps(_mm512_reduce_max_ps(m));
    __m512 sum = _mm512_setzero_ps();
    for (int64_t j = 0; j < stride_n; j += 16) {
      const __mmask16 k = j + 16 <= n ? 0xFFFF : tail;
      const __m512 e = _mm512_maskz_mov_ps(k, exp_ps(_mm512_sub_ps(_mm512_loadu_ps(sg + j), mv)));
      _mm512_storeu_ps(sg + j, e);
      sum = _mm512_add_ps(sum, e);
    }
    const float sink_e = _mm512_cvtss_f32(exp_ps(_mm512_set1_ps(sinks[g] - _mm512_cvtss_f32(mv))));
    denom[g] = _mm512_reduce_add_ps(sum) + sink_e;
  }
  // P.V, 32 output dims at a time so the G x 2 accumulators stay in registers.
  for (int64_t c0 = 0; c0 < C; c0 += 2) {
    const bool two = c0 + 1 < C;
    __m512 acc[16][2];
    for (int64_t g = 0; g < G; ++g) acc[g][0] = acc[g][1] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const T* vrow = row(vp, j);
      const __m512 v0 = load16_f32(vrow + 16 * c0);
      const __m512 v1 = two ? load16_f32(vrow + 16 * c0 + 16) : _mm512_setzero_ps();
      for (int64_t g = 0; g < G; ++g) {
        const __m512 pv = _mm512_set1_ps(scores[g * stride_n + j]);
        acc[g][0] = _mm512_fmadd_ps(pv, v0, acc[g][0]);
        acc[g][1] = _mm512_fmadd_ps(pv, v1, acc[g][1]);
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      const __m512 inv = _mm512_set1_ps(1.0f / denom[g]);
      alignas(64) float o[32];
      _mm512_store_ps(o, _mm512_mul_ps(acc[g][0], inv));
      _mm512_store_ps(o + 16, _mm512_mul_ps(acc[g][1], inv));
      for (int i = 0; i < (two ? 32 : 16); ++i) out[g * D + 16 * c0 + i] = T(o[i]);
    }
  }
  return true;
}
#endif

template <typename T>
void attention_decode_impl(const at::Tensor& q, const at::Tensor& k_store, const at::Tensor& v_store,
                           const float* sinks, const int64_t* slots, const int64_t* lengths, int64_t window, bool ring,
                           float sm_scale, at::Tensor& out) {
  const int64_t B = q.size(0), Hq = q.size(1), D = q.size(2);
  const int64_t S = k_store.size(1), Hkv = k_store.size(2);
  const int64_t G = Hq / Hkv;
  const T* qp = q.data_ptr<T>();
  const T* kp = k_store.data_ptr<T>();
  const T* vp = v_store.data_ptr<T>();
  T* op = out.data_ptr<T>();
  at::parallel_for(0, B * Hkv, 1, [&](int64_t i0, int64_t i1) {
    std::vector<float> qf(static_cast<size_t>(G * D));
    std::vector<float> acc(static_cast<size_t>(G * D));
    std::vector<float> scores;
    for (int64_t item = i0; item < i1; ++item) {
      const int64_t b = item / Hkv, kvh = item % Hkv;
      const int64_t length = lengths[b];
      const int64_t held = ring ? std::min(length, S) : length;
      int64_t first = length - held;  // oldest held position
      if (window > 0) first = std::max(first, length - window);  // q at length-1 sees (q - window, q]
      const int64_t n = length - first;
      const int64_t slot = slots[b];
#if defined(__AVX512F__)
      if (item == i0 || kvh == 0) {
        // This thread's KV heads of sequence b, position by position: a contiguous block per position (the store is
        // [.., pos, kvh, D]), prefetched before the per-head loops below read it head by head, 1 KB-strided. Right
        // after a layer's weight streams the cache rows are cold; on the 20b at 512 positions a full layer's call took
        // ~290 us cold against ~105 us warm, and ~160 us with this pass (T0 beat T1/T2 hints: ~160 vs ~210 us).
        const int64_t heads = std::min(Hkv - kvh, i1 - item);
        const int64_t block = heads * D * static_cast<int64_t>(sizeof(T));
        for (int64_t j = 0; j < n; ++j) {
          const int64_t pos = first + j;
          const int64_t offset = ((slot * S + (ring ? pos % S : pos)) * Hkv + kvh) * D;
          const char* krow = reinterpret_cast<const char*>(kp + offset);
          const char* vrow = reinterpret_cast<const char*>(vp + offset);
          for (int64_t b0 = 0; b0 < block; b0 += 64) {
            _mm_prefetch(krow + b0, _MM_HINT_T0);
            _mm_prefetch(vrow + b0, _MM_HINT_T0);
          }
        }
      }
      if (attention_item_avx512<T>(qp + (b * Hq + kvh * G) * D, kp, vp, sinks + kvh * G, slot, first, n, S, Hkv, kvh,
                                   G, D, ring, sm_scale, scores, op + (b * Hq + kvh * G) * D))
        continue;
#endif
      for (int64_t g = 0; g < G; ++g)
        for (int64_t d = 0; d < D; ++d) qf[g * D + d] = static_cast<float>(qp[(b * Hq + kvh * G + g) * D + d]);
      scores.assign(static_cast<size_t>(G * std::max<int64_t>(n, 1)), 0.0f);
      auto row_of = [&](int64_t pos) { return ring ? pos % S : pos; };
      for (int64_t j = 0; j < n; ++j) {
        const T* krow = kp + ((slot * S + row_of(first + j)) * Hkv + kvh) * D;
        for (int64_t g = 0; g < G; ++g) scores[g * n + j] = dot_f32(qf.data() + g * D, krow, D) * sm_scale;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      std::vector<float> denom(static_cast<size_t>(G));
      for (int64_t g = 0; g < G; ++g) {
        const float sink = sinks[kvh * G + g];
        float m = sink;
        for (int64_t j = 0; j < n; ++j) m = std::max(m, scores[g * n + j]);
        float sum = std::exp(sink - m);
        for (int64_t j = 0; j < n; ++j) {
          const float e = std::exp(scores[g * n + j] - m);
          scores[g * n + j] = e;
          sum += e;
        }
        denom[g] = sum;
      }
      for (int64_t j = 0; j < n; ++j) {
        const T* vrow = vp + ((slot * S + row_of(first + j)) * Hkv + kvh) * D;
        for (int64_t g = 0; g < G; ++g) {
          const float p = scores[g * n + j];
          float* a = acc.data() + g * D;
          for (int64_t d = 0; d < D; ++d) a[d] += p * static_cast<float>(vrow[d]);
        }
      }
      for (int64_t g = 0; g < G; ++g)
        for (int64_t d = 0; d < D; ++d) op[(b * Hq + kvh * G + g) * D + d] = T(acc[g * D + d] / denom[g]);
    }
  });
}

at::Tensor attention_decode(const at::Tensor& q, const at::Tensor& k_store, const at::Tensor& v_store,
                            const at::Tensor& sinks, const at::Tensor& slots, const at::Tensor& lengths, int64_t window,
                            bool ring, double sm_scale) {
  TORCH_CHECK(q.device().is_cpu() && q.dim() == 3 && q.is_contiguous(), "q must be a contiguous CPU [B, Hq, D] tensor");
  TORCH_CHECK(k_store.dim() == 4 && k_store.is_contiguous() && v_store.sizes() == k_store.sizes() &&
                  v_store.is_contiguous(),
              "k_store and v_store must be contiguous [R, S, Hkv, D] tensors of one shape");
  TORCH_CHECK(k_store.scalar_type() == q.scalar_type() && v_store.scalar_type() == q.scalar_type(),
              "q, k_store and v_store must share a dtype");
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kBFloat16, "q must be float32 or bfloat16");
  const int64_t B = q.size(0), Hq = q.size(1), D = q.size(2);
  const int64_t R = k_store.size(0), S = k_store.size(1), Hkv = k_store.size(2);
  TORCH_CHECK(k_store.size(3) == D && Hkv > 0 && Hq % Hkv == 0, "head shapes do not fit: q ", q.sizes(), ", store ",
              k_store.sizes());
  TORCH_CHECK(sinks.scalar_type() == at::kFloat && sinks.is_contiguous() && sinks.numel() == Hq,
              "sinks must be contiguous float32 [Hq]");
  TORCH_CHECK(slots.scalar_type() == at::kLong && lengths.scalar_type() == at::kLong && slots.numel() == B &&
                  lengths.numel() == B && slots.is_contiguous() && lengths.is_contiguous(),
              "slots and lengths must be contiguous int64 [B]");
  const int64_t* sl = slots.data_ptr<int64_t>();
  const int64_t* len = lengths.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK(sl[b] >= 0 && sl[b] < R, "slot ", sl[b], " out of range [0, ", R, ")");
    TORCH_CHECK(len[b] >= 1 && (ring || len[b] <= S), "length ", len[b], " does not fit a store of ", S, " rows");
  }
  at::Tensor out = at::empty({B, Hq, D}, q.options());
  if (q.scalar_type() == at::kFloat) {
    attention_decode_impl<float>(q, k_store, v_store, sinks.data_ptr<float>(), sl, len, window, ring,
                                 static_cast<float>(sm_scale), out);
  } else {
    attention_decode_impl<c10::BFloat16>(q, k_store, v_store, sinks.data_ptr<float>(), sl, len, window, ring,
                                         static_cast<float>(sm_scale), out);
  }
  return out;
}

// The level this translation unit was compiled for: cpu_build checks it against the level it asked for.
std::string isa() {
#ifdef GPTOSS_BF16_DOT
  return std::string(kIsa) + "bf16";
#else
  return kIsa;
#endif
}

}  // namespace

TORCH_LIBRARY(OP_NAMESPACE, m) {
  m.def("linear(Tensor x, Tensor blocks, Tensor scales, Tensor? bias) -> Tensor", &mxfp4_linear);
  m.def("bf16_linear(Tensor x, Tensor weight, Tensor? bias, bool fp32_out=False) -> Tensor", &bf16_linear);
  m.def("moe(Tensor x, Tensor indices, Tensor weights, Tensor blocks1, Tensor scales1, Tensor bias1, Tensor blocks2, "
        "Tensor scales2, Tensor bias2, float limit, float alpha) -> Tensor", &moe_mxfp4);
  m.def("attention_decode(Tensor q, Tensor k_store, Tensor v_store, Tensor sinks, Tensor slots, Tensor lengths, "
        "int window, bool ring, float sm_scale) -> Tensor", &attention_decode);
  m.def("isa() -> str", &isa);
}
"""


def extension_source(namespace: str) -> str:
    """The whole C++ translation unit, its ops registered under ``torch.ops.<namespace>`` (built by cpu_build)."""
    table = ", ".join(f"{v!r}f" for v in FP4_VALUES)
    # The elementwise ops (kernels.cpu_elementwise) share this build: one compile, one cached binary.
    return (_CPP_SOURCE + ELEMENTWISE_CPP_SOURCE).replace("FP4_TABLE", table).replace("OP_NAMESPACE", namespace)


def available() -> bool:
    """Whether the fused CPU kernels can be used; builds (or loads the cached build of) them on first call.

    Never raises: a missing compiler, a failed build or an unsupported platform returns ``False`` and is logged once
    (as a warning) with the reason, which ``build_error()`` also returns. See ``kernels.cpu_build``.
    """
    return cpu_build.available()


def build_error() -> str | None:
    """Why ``available()`` returned ``False`` (``None`` if it has not been called or succeeded)."""
    return cpu_build.build_error()


def isa() -> str | None:
    """The instruction-set level that runs (``"avx512bf16"``, ``"avx512"``, ``"avx2"``, ``"scalar"``); None if
    unavailable."""
    return cpu_build.active_level()


def _op() -> Any:
    """The active variant's op namespace; raises RuntimeError if it could not be built here."""
    return cpu_build.ops()


def extension_ops() -> Any:
    """The built extension's op namespace (``torch.ops.<namespace>``), for modules whose C++ shares this build
    (kernels.cpu_elementwise). Raises RuntimeError if the extension could not be built here."""
    return cpu_build.ops()


def _checked_bias(bias: torch.Tensor | None, n_out: int) -> torch.Tensor | None:
    """A linear op's optional ``[N]`` bias as the kernels read it: on CPU, contiguous, fp32 or bf16."""
    if bias is None:
        return None
    if bias.device.type != "cpu" or bias.dim() != 1 or bias.shape[0] != n_out:
        raise ValueError(f"bias must be a CPU [N={n_out}] tensor, got {tuple(bias.shape)} on {bias.device}")
    if bias.dtype not in (torch.float32, torch.bfloat16):
        bias = bias.float()
    return bias.contiguous()


def mxfp4_linear(
    x: torch.Tensor,
    blocks: torch.Tensor,
    scales: torch.Tensor,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x @ W.T + bias`` with ``W = dequantize_mxfp4(blocks, scales)``, accumulated in fp32, never materialising W.

    Args:
        x: ``[T, K]`` bf16 or fp32 activations on CPU (made contiguous if it is not: it is small).
        blocks: uint8 ``[N, K/32, 16]``, contiguous (e.g. ``blocks[e]`` of a contiguous ``[E, N, G, 16]`` tensor,
            memory-mapped or not). A non-contiguous view raises rather than silently copying megabytes per call.
        scales: uint8 ``[N, K/32]``, contiguous.
        bias: optional ``[N]`` bias (bf16 or fp32 are read directly; other float dtypes are converted), added in fp32.

    Returns:
        ``[T, N]`` in ``x.dtype`` (rounded once from the fp32 result).

    Raises:
        ValueError: bad shapes, dtypes, devices or non-contiguous weights.
        RuntimeError: the extension is not available (check ``available()`` first).
    """
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"x must be float32 or bfloat16, got {x.dtype}")
    if blocks.dtype != torch.uint8 or scales.dtype != torch.uint8:
        raise ValueError(f"blocks/scales must be uint8, got {blocks.dtype}/{scales.dtype}")
    for name, t in (("x", x), ("blocks", blocks), ("scales", scales)):
        if t.device.type != "cpu":
            raise ValueError(f"{name} must be on CPU, got {t.device}")
    if x.dim() != 2:
        raise ValueError(f"x must be [T, K], got shape {tuple(x.shape)}")
    if blocks.dim() != 3 or blocks.shape[2] != MXFP4_BLOCK // 2:
        raise ValueError(f"blocks must be [N, K/32, 16], got shape {tuple(blocks.shape)}")
    n_out, groups = blocks.shape[0], blocks.shape[1]
    if tuple(scales.shape) != (n_out, groups):
        raise ValueError(f"scales must be [N, K/32] = {(n_out, groups)}, got {tuple(scales.shape)}")
    if x.shape[1] != groups * MXFP4_BLOCK:
        raise ValueError(f"x has K={x.shape[1]} but the weights have K={groups * MXFP4_BLOCK} ({groups} groups of 32)")
    if not blocks.is_contiguous() or not scales.is_contiguous():
        raise ValueError(
            "blocks and scales must be contiguous (pass one expert's slice of a contiguous [E, N, G, 16] tensor); "
            f"got strides {blocks.stride()} / {scales.stride()}"
        )
    bias = _checked_bias(bias, n_out)
    op = _op()
    out: torch.Tensor = op.linear(x.contiguous(), blocks, scales, bias)
    return out


def bf16_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *, fp32_out: bool = False
) -> torch.Tensor:
    """``x @ weight.T + bias`` for a bf16 weight, accumulated in fp32: a streaming GEMV for decode (small ``T``).

    Same extension as ``mxfp4_linear`` (one build). Each weight row is read once per tile of tokens (up to 4 while
    their activations fit in L1) and reduced in fp32: with ``vdpbf16ps`` against bf16 activations where the CPU has
    AVX512-BF16, else widened to fp32 in registers; rows are shared between threads like ``mxfp4_linear``'s.

    Args:
        x: ``[T, K]`` bf16 or fp32 activations on CPU (made contiguous if it is not). Meant for ``T <= 4``; larger
            ``T`` works but re-reads the weight once per tile, where a BLAS matmul is the better choice.
        weight: bf16 ``[N, K]``, contiguous (memory-mapped is fine). A non-contiguous weight raises.
        bias: optional ``[N]`` bias (bf16 or fp32 are read directly; other float dtypes are converted), added in fp32.

    Returns:
        ``[T, N]`` in ``x.dtype`` (rounded once from the fp32 result), or the fp32 result itself with ``fp32_out``.

    Raises:
        ValueError: bad shapes, dtypes, devices or a non-contiguous weight.
        RuntimeError: the extension is not available (check ``available()`` first).
    """
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"x must be float32 or bfloat16, got {x.dtype}")
    if weight.dtype != torch.bfloat16:
        raise ValueError(f"weight must be bfloat16, got {weight.dtype}")
    for name, t in (("x", x), ("weight", weight)):
        if t.device.type != "cpu":
            raise ValueError(f"{name} must be on CPU, got {t.device}")
    if x.dim() != 2 or weight.dim() != 2:
        raise ValueError(f"x must be [T, K] and weight [N, K], got {tuple(x.shape)} and {tuple(weight.shape)}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"x has K={x.shape[1]} but the weight has K={weight.shape[1]}")
    if not weight.is_contiguous():
        raise ValueError(f"weight must be contiguous, got strides {weight.stride()}")
    n_out = weight.shape[0]
    bias = _checked_bias(bias, n_out)
    op = _op()
    out: torch.Tensor = op.bf16_linear(x.contiguous(), weight, bias, fp32_out)
    return out


def moe_mxfp4(
    x: torch.Tensor,
    routing_weights: torch.Tensor,
    expert_indices: torch.Tensor,
    mlp1: tuple[torch.Tensor, torch.Tensor],
    mlp1_bias: torch.Tensor,
    mlp2: tuple[torch.Tensor, torch.Tensor],
    mlp2_bias: torch.Tensor,
    swiglu_limit: float,
    swiglu_alpha: float,
) -> torch.Tensor:
    """The whole MoE MLP of ``kernels.moe.moe_ref`` in one call, for decode-sized ``T`` (MXFP4 experts only).

    Each token's result is independent of the other tokens in the batch (bit for bit), so batched decode of several
    sequences gives exactly what decoding each alone gives.

    Args:
        x: ``[T, H]`` bf16 or fp32 normed activations.
        routing_weights: ``[T, k]`` (fp32); expert_indices: ``[T, k]`` integer expert ids.
        mlp1: ``(blocks [E, 2I, H/32, 16], scales [E, 2I, H/32])``; mlp1_bias ``[E, 2I]``.
        mlp2: ``(blocks [E, H, I/32, 16], scales [E, H, I/32])``; mlp2_bias ``[E, H]``.

    Returns:
        ``[T, H]`` in ``x.dtype``.

    Raises:
        ValueError: bad dtypes, devices or shapes.
        RuntimeError: the extension is not available (check ``available()`` first).
    """
    if x.dtype not in (torch.float32, torch.bfloat16):
        raise ValueError(f"x must be float32 or bfloat16, got {x.dtype}")
    tensors = (x, routing_weights, expert_indices, *mlp1, mlp1_bias, *mlp2, mlp2_bias)
    if any(t.device.type != "cpu" for t in tensors):
        raise ValueError("moe_mxfp4 needs every tensor on the CPU")
    if expert_indices.dim() != 2 or routing_weights.shape != expert_indices.shape or x.dim() != 2:
        raise ValueError(
            f"x [T, H], weights and indices [T, k] expected, got {tuple(x.shape)}, {tuple(routing_weights.shape)}, "
            f"{tuple(expert_indices.shape)}"
        )
    if not all(t.is_contiguous() for t in (*mlp1, *mlp2)):
        raise ValueError("expert blocks and scales must be contiguous")

    def as_bias(bias: torch.Tensor) -> torch.Tensor:
        return (bias if bias.dtype in (torch.float32, torch.bfloat16) else bias.float()).contiguous()

    op = _op()
    out: torch.Tensor = op.moe(
        x.contiguous(),
        expert_indices.to(torch.int64).contiguous(),
        routing_weights.float().contiguous(),
        mlp1[0],
        mlp1[1],
        as_bias(mlp1_bias),
        mlp2[0],
        mlp2[1],
        as_bias(mlp2_bias),
        float(swiglu_limit),
        float(swiglu_alpha),
    )
    return out


def attention_decode(
    q: torch.Tensor,
    k_store: torch.Tensor,
    v_store: torch.Tensor,
    sinks: torch.Tensor,
    slots: torch.Tensor,
    lengths: torch.Tensor,
    window: int,
    ring: bool,
    sm_scale: float,
) -> torch.Tensor:
    """:func:`kernels.attention.attention_decode_ref` (same arguments and result) as one fused CPU call.

    Each sequence's output is independent of the rest of the batch. ``q``/``k_store``/``v_store`` must share a dtype
    (bf16 or fp32); ``lengths`` must fit the store (``<= S`` unless ``ring``).

    Raises:
        ValueError: tensors on another device.
        RuntimeError: bad shapes or dtypes, or the extension is unavailable (check ``available()`` first).
    """
    if any(t.device.type != "cpu" for t in (q, k_store, v_store, sinks, slots, lengths)):
        raise ValueError("attention_decode needs every tensor on the CPU")
    op = _op()
    out: torch.Tensor = op.attention_decode(
        q.contiguous(),
        k_store,
        v_store,
        sinks.float().contiguous(),
        slots.to(torch.int64).contiguous(),
        lengths.to(torch.int64).contiguous(),
        int(window),
        bool(ring),
        float(sm_scale),
    )
    return out
