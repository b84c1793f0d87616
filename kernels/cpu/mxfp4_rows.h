// One MXFP4 weight row against a tile of up to kMaxTile tokens' activations, per instruction-set level: the core of
// mxfp4_linear (gemv.cpp) and of the MoE experts (moe.cpp).
//
// Layout contract with the callers: x is deinterleaved per group of 32 into [16 even, 16 odd] elements
// (deinterleave, common.h), so that the low nibbles of a group's 16 bytes meet the even elements and the high nibbles
// the odd ones without any in-register shuffling of the activations.
#pragma once

#include "common.h"

namespace GPTOSS_OP_NAMESPACE {

// E2M1 code -> value, bit 3 the sign: kernels/mxfp4.py's FP4_VALUES (the tests compare every code with the torch
// reference, which decodes with that table).
alignas(64) constexpr float kFp4[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                        -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

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

inline const float* scale_table() {
  static const ScaleTable table;
  return table.v;
}

#if defined(__AVX512F__)
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

}  // namespace GPTOSS_OP_NAMESPACE
