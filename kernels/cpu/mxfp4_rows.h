// One MXFP4 weight row against a tile of up to kMaxTile tokens' activations, per instruction-set level: the core of
// mxfp4_linear (gemv.cpp) and of the MoE experts (moe.cpp).
//
// Layout contract with the callers: x is reordered within each group of 32 by mxfp4_layout (mxfp4_activations), into
// the order in which the level decodes a group's weights, so that the activations need no in-register shuffling:
// [16 even, 16 odd] elements (deinterleave, common.h) on AVX-512 and scalar, where the low nibbles of a group's
// 16 bytes meet the even elements and the high nibbles the odd ones; four runs of 8 on AVX2 (kLayoutResidue).
#pragma once

#include <algorithm>
#include <type_traits>

#include "common.h"
#include "vec8.h"

namespace GPTOSS_OP_NAMESPACE {

// E2M1 code -> value, bit 3 the sign: kernels/mxfp4.py's FP4_VALUES (the tests compare every code with the torch
// reference, which decodes with that table).
alignas(64) constexpr float kFp4[16] = {+0.0f, +0.5f, +1.0f, +1.5f, +2.0f, +3.0f, +4.0f, +6.0f,
                                        -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// Token tile: up to this many tokens share one decode of a weight row. The tile's fp32 activations (11.5 KB per token
// at K=2880) must stay in L1 while a row chunk streams past; 8 tokens measured slower per token than 4.
constexpr int kMaxTile = 4;

// Every row kernel below prefetches kStreamPrefetchBytes ahead along a thread's weight stream (common.h, with the
// measurements): the hardware prefetcher alone left the kernel at ~60% of the DRAM read bandwidth (AMD Zen 4).

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
      prefetch_ahead(blk + 16 * g, kStreamPrefetchBytes);
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
      if ((g & 1) == 0) prefetch_ahead(blk + 16 * g, kStreamPrefetchBytes);
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
// Every E2M1 value has at most two significant bits, so its fp32 bits are its top two bytes followed by zeros (it is
// exactly a bf16 value). Two vpshufb tables give those two bytes for the 16 codes (bit 3 the sign); vpshufb looks up
// within each 128-bit lane, so each table is stored twice. kFp4 lists the same values (the tests check every code).
alignas(32) constexpr uint8_t kFp4Byte3[32] = {
    0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40, 0x80, 0xBF, 0xBF, 0xBF, 0xC0, 0xC0, 0xC0, 0xC0,
    0x00, 0x3F, 0x3F, 0x3F, 0x40, 0x40, 0x40, 0x40, 0x80, 0xBF, 0xBF, 0xBF, 0xC0, 0xC0, 0xC0, 0xC0};
alignas(32) constexpr uint8_t kFp4Byte2[32] = {
    0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0, 0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0,
    0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0, 0x00, 0x00, 0x80, 0xC0, 0x00, 0x40, 0x80, 0xC0};

// The AVX2 kernel's prefetch distance is kStreamPrefetchBytes too: on AMD Zen 3 1, 2 and 4 KiB measured the same within
// noise (512 B ~10% slower at T = 1 on 2 threads); on a Xeon (Emerald Rapids class) at the avx2 level one 20b-shape
// MoE call took 2.91 ms with the hardware prefetcher alone, 2.42 at 2 KiB, 2.27 at 4 KiB and 2.25 at 8 KiB.

// The AVX2 activation layout of a group of 32 elements e: four runs of 8, e = 4i, 4i + 2, 4i + 1, 4i + 3 (i = 0..7),
// the order in which decode_pair's vectors come out, so the activations need no shuffling in the inner loop.
constexpr int kLayoutResidue[4] = {0, 2, 1, 3};

template <typename T>
inline void mxfp4_layout(const T* x, int64_t rows, int64_t K, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = x + r * K;
    float* dst = out + r * K;
    for (int64_t g = 0; g < K; g += 32) {
      for (int q = 0; q < 4; ++q) {
        for (int i = 0; i < 8; ++i) dst[g + 8 * q + i] = to_float(src[g + 4 * i + kLayoutResidue[q]]);
      }
    }
  }
}

// Decodes two groups' 32 bytes into fp32 weights without scaling: w[0..3] group g, w[4..7] group g + 1, in the
// kLayoutResidue order. Per group: vpshufb gives each nibble's two value bytes, vpunpck{l,h}bw pairs them into 16-bit
// words (the value's bf16 bits), and a 32-bit lane holding two words yields its even word as fp32 by a shift and its
// odd word by a mask: 20 integer ops per 64 weights, half of them shuffles, and no lane-crossing except one vpermq.
inline void decode_pair(__m256i raw, __m256 w[8]) {
  const __m256i nib_mask = _mm256_set1_epi8(0x0F);
  const __m256i word_hi = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  const __m256i byte3 = _mm256_load_si256(reinterpret_cast<const __m256i*>(kFp4Byte3));
  const __m256i byte2 = _mm256_load_si256(reinterpret_cast<const __m256i*>(kFp4Byte2));
  // [g 0-7, g+1 0-7 | g 8-15, g+1 8-15]: unpacklo then takes group g, unpackhi group g + 1, each byte 0-7 in lane 0.
  raw = _mm256_permute4x64_epi64(raw, 0xD8);
  const __m256i lo = _mm256_and_si256(raw, nib_mask);                         // element 2j of byte j
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nib_mask);  // element 2j + 1
  const __m256i lo3 = _mm256_shuffle_epi8(byte3, lo);
  const __m256i lo2 = _mm256_shuffle_epi8(byte2, lo);
  const __m256i hi3 = _mm256_shuffle_epi8(byte3, hi);
  const __m256i hi2 = _mm256_shuffle_epi8(byte2, hi);
  const __m256i words[4] = {_mm256_unpacklo_epi8(lo2, lo3), _mm256_unpacklo_epi8(hi2, hi3),
                            _mm256_unpackhi_epi8(lo2, lo3), _mm256_unpackhi_epi8(hi2, hi3)};
  for (int i = 0; i < 2; ++i) {
    // words[2i]: low nibbles of one group's bytes (byte j holds element 2j), words[2i + 1] its high nibbles
    // (element 2j + 1); 32-bit lane k holds bytes 2k and 2k + 1 (lane 0) or 8 + 2k and 9 + 2k (lane 1).
    w[4 * i + 0] = _mm256_castsi256_ps(_mm256_slli_epi32(words[2 * i], 16));           // elements 4k
    w[4 * i + 1] = _mm256_castsi256_ps(_mm256_and_si256(words[2 * i], word_hi));      // 4k + 2
    w[4 * i + 2] = _mm256_castsi256_ps(_mm256_slli_epi32(words[2 * i + 1], 16));       // 4k + 1
    w[4 * i + 3] = _mm256_castsi256_ps(_mm256_and_si256(words[2 * i + 1], word_hi));  // 4k + 3
  }
}

// One group's sum for one token: the unscaled weights against its 32 activations, in a fixed order.
inline __m256 group_dot(const __m256* w, const float* xg) {
  __m256 p = _mm256_mul_ps(w[0], _mm256_loadu_ps(xg));
  p = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(xg + 8), p);
  p = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(xg + 16), p);
  return _mm256_fmadd_ps(w[3], _mm256_loadu_ps(xg + 24), p);
}

// One output row for TT tokens; xp in the mxfp4_layout order. Each group's 32 products are summed unscaled and the
// sum is scaled into the token's accumulator (one FMA per group, not one multiply per weight vector), even groups
// into one accumulator and odd groups into another so that the scale FMAs' latency chain is not the bound. Each token
// has its own accumulators and the same order for any TT, so kRowExact changes nothing here: sharing scaled weights
// between tokens would cost as many multiplies as it saves.
template <int TT, bool kRowExact = false>
inline void row_dot(const uint8_t* blk, const uint8_t* sc, int64_t G, const float* xp, int64_t xstride,
                    const float* stab, float* res) {
  __m256 acc0[TT];
  __m256 acc1[TT];
  for (int t = 0; t < TT; ++t) {
    acc0[t] = _mm256_setzero_ps();
    acc1[t] = _mm256_setzero_ps();
  }
  int64_t g = 0;
  for (; g + 2 <= G; g += 2) {
    if ((g & 3) == 0) prefetch_ahead(blk + 16 * g, kStreamPrefetchBytes);
    __m256 w[8];
    decode_pair(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 * g)), w);
    const __m256 s0 = _mm256_set1_ps(stab[sc[g]]);
    const __m256 s1 = _mm256_set1_ps(stab[sc[g + 1]]);
#pragma GCC unroll 4
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + 32 * g;
      acc0[t] = _mm256_fmadd_ps(group_dot(w, xg), s0, acc0[t]);
      acc1[t] = _mm256_fmadd_ps(group_dot(w + 4, xg + 32), s1, acc1[t]);
    }
  }
  if (g < G) {  // an odd group count: the last group alone, both lanes loaded with its 16 bytes
    __m256 w[8];
    decode_pair(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * g))), w);
    const __m256 s0 = _mm256_set1_ps(stab[sc[g]]);
    for (int t = 0; t < TT; ++t) acc0[t] = _mm256_fmadd_ps(group_dot(w, xp + t * xstride + 32 * g), s0, acc0[t]);
  }
  for (int t = 0; t < TT; ++t) res[t] = hsum8(_mm256_add_ps(acc0[t], acc1[t]));
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

#if defined(__AVX2__) && defined(__FMA__) && !defined(__AVX512F__)
#define GPTOSS_I16_MOE 1
// The AVX2 MoE decode of bf16 activations in integers (row_dot_i16). With fp32 activations the AVX2 row spends ~20
// integer ops, nine of them shuffles, decoding 64 weights, plus 8 FMAs per token. Here a nibble becomes its E2M1
// value times 2, an integer in [-12, 12], by one vpshufb; each token's activations are rounded once per call to int16
// with one fp32 scale per group of 32 (absmax / 32767: off by at most absmax / 65534, ~250x finer than bf16's own
// rounding of them); and `vpmaddwd` sums the products exactly in int32 before one conversion and one FMA per pair of
// groups and token. fp32 activations keep row_dot. Measured on AMD Zen 4 at the avx2 level: see kernels/README.md.
//
// E2M1 code -> 2 x value (bit 3 the sign) as int8, stored twice for vpshufb's two 128-bit lanes.
alignas(32) constexpr int8_t kFp4Twice[32] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12,
                                              0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Per pair of groups (g, g + 1): 64 int16 activations and 8 fp32 scales. Words are ordered as row_dot_i16's four
// word vectors come out of a 32-byte weight load: vector v (0..3) holds residue kLayoutResidue[v] of each run of 4,
// word k of it element 4 (k % 8) + kLayoutResidue[v] of group g + k / 8; the scales are [xs_g x 4, xs_g+1 x 4]. An odd
// last group leaves the other half zero, values and scales.
inline int64_t i16_pairs(int64_t K) { return (K / 32 + 1) / 2; }

template <typename T>
inline void i16_layout(const T* x, int64_t K, int16_t* xq, float* xs) {
  const int64_t G = K / 32;
  std::fill(xq, xq + i16_pairs(K) * 64, int16_t{0});
  std::fill(xs, xs + i16_pairs(K) * 8, 0.0f);
  constexpr int kVectorOfResidue[4] = {0, 2, 1, 3};  // the inverse of kLayoutResidue (which is its own inverse)
  for (int64_t g = 0; g < G; ++g) {
    int16_t q[32];
    const float scale = round_group_to_int16(x + 32 * g, q);
    const int64_t p = g / 2;
    const int half = static_cast<int>(g % 2);
    for (int e = 0; e < 32; ++e) xq[64 * p + 16 * kVectorOfResidue[e % 4] + 8 * half + e / 4] = q[e];
    for (int l = 0; l < 4; ++l) xs[8 * p + 4 * half + l] = scale;
  }
}

// One output row for TT tokens: xq/xs the first token's i16_layout rows, xstride / sstride apart. A pair of groups is
// one 32-byte load; the low and high nibbles index kFp4Twice (two vpshufb), and each 16-bit word's low byte (shifted
// up and back) and high byte (shifted down) give the four word vectors, so no unpacking shuffles. Per token: four
// `vpmaddwd` into 8 int32 lanes (lanes 0-3 group g, 4-7 group g + 1), one conversion and one FMA with
// [s_g/2 * xs_g x 4, s_g+1/2 * xs_g+1 x 4]. Pairs alternate between two accumulators per token (a compile-time slot);
// each token's order is the same for any TT.
template <int TT>
inline void row_dot_i16(const uint8_t* blk, const uint8_t* sc, int64_t G, const int16_t* xq, int64_t xstride,
                        const float* xs, int64_t sstride, const float* stab, float* res) {
  const __m256i nib = _mm256_set1_epi8(0x0F);
  const __m256i table = _mm256_load_si256(reinterpret_cast<const __m256i*>(kFp4Twice));
  __m256 acc[TT][2];
  for (int t = 0; t < TT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  const auto pair = [&](int64_t p, __m256i raw, float s0, float s1, auto slot) {
    constexpr int a = decltype(slot)::value;
    const __m256i lo = _mm256_shuffle_epi8(table, _mm256_and_si256(raw, nib));
    const __m256i hi = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(raw, 4), nib));
    const __m256i w0 = _mm256_srai_epi16(_mm256_slli_epi16(lo, 8), 8);  // residue 0: even bytes' low nibbles
    const __m256i w1 = _mm256_srai_epi16(lo, 8);                         // residue 2: odd bytes' low nibbles
    const __m256i w2 = _mm256_srai_epi16(_mm256_slli_epi16(hi, 8), 8);  // residue 1
    const __m256i w3 = _mm256_srai_epi16(hi, 8);                         // residue 3
    // The table holds 2 x value: halving the scale is exact (a power of two).
    const __m256 dw = _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_set1_ps(0.5f * s0)), _mm_set1_ps(0.5f * s1), 1);
    for (int t = 0; t < TT; ++t) {
      const int16_t* xb = xq + t * xstride + 64 * p;
      const auto x = [xb](int v) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb + 16 * v)); };
      const __m256i sums = _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(w0, x(0)), _mm256_madd_epi16(w1, x(1))),
                                            _mm256_add_epi32(_mm256_madd_epi16(w2, x(2)), _mm256_madd_epi16(w3, x(3))));
      const __m256 scale = _mm256_mul_ps(dw, _mm256_loadu_ps(xs + t * sstride + 8 * p));
      acc[t][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[t][a]);
    }
  };
  const auto load = [blk](int64_t g) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16 * g)); };
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) {
    prefetch_ahead(blk + 16 * g, kStreamPrefetchBytes);
    pair(g / 2, load(g), stab[sc[g]], stab[sc[g + 1]], std::integral_constant<int, 0>{});
    pair(g / 2 + 1, load(g + 2), stab[sc[g + 2]], stab[sc[g + 3]], std::integral_constant<int, 1>{});
  }
  if (g + 2 <= G) {
    pair(g / 2, load(g), stab[sc[g]], stab[sc[g + 1]], std::integral_constant<int, 0>{});
    g += 2;
  }
  if (g < G) {  // an odd group count: the last group in both lanes; the second half's activations and scales are 0
    const __m256i raw = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 16 * g)));
    pair(g / 2, raw, stab[sc[g]], 0.0f, std::integral_constant<int, 1>{});
  }
  for (int t = 0; t < TT; ++t) res[t] = hsum8(_mm256_add_ps(acc[t][0], acc[t][1]));
}
#endif

#if defined(__AVX512F__) || !(defined(__AVX2__) && defined(__FMA__))  // the levels without their own layout
// x [rows, K] (K a multiple of 32) -> fp32 in the layout row_dot reads: [16 even, 16 odd] per group of 32.
template <typename T>
inline void mxfp4_layout(const T* x, int64_t rows, int64_t K, float* out) {
  deinterleave(x, rows, K, out);
}
#endif

#if defined(GPTOSS_BF16_DOT)
// ---- decode rows with vdpbf16ps (AVX512-BF16, bf16 activations) ----
// Two groups (32 bytes, 64 weights) per step: vpmovzxbw widens the bytes to 32 words, and one vpermw over a 32-word
// table turns each word's low nibble into its bf16 bits (a scaled E2M1 value is exactly a bf16 value; vpermw reads
// index bits 0-4, so the table lists the 16 values twice and bit 4, the high nibble's low bit, only picks the copy);
// a 4-bit shift and a second vpermw do the high nibbles. The even-element vector holds group g's even elements in
// words 0-15 and group g + 1's in words 16-31, likewise the odd one, so vdpbf16ps's fp32 lanes 0-7 belong to group g
// and 8-15 to group g + 1: two vdpbf16ps sum the 64 exact products (bf16 x times a 2-bit mantissa) and one FMA with
// [scale g x 8, scale g + 1 x 8] scales them. The activations are laid out to match once per call (pair_layout).
// Four shuffles per 64 weights against row_dot's twelve (vpmovzxbd + vpermps per 16 weights), which bound that kernel
// at any tile size: on one Zen 4 core, from L3, 5760 x 2880 at one token 0.57 vs 0.84 ms (15.4 vs 10.5 GB/s of
// weights). vdpbf16ps issues at about one per two cycles there, so with more tokens per row the products take over:
// 0.88 vs 0.84 ms at two tokens, 1.37 vs 0.85 at four. Decode's MoE tiles are almost always one token (a token shares
// an expert with another only in a batch, and then mostly with one), so this is the decode path on AVX512-BF16.
alignas(64) constexpr uint16_t kFp4Bf16Words[32] = {
    0x0000, 0x3F00, 0x3F80, 0x3FC0, 0x4000, 0x4040, 0x4080, 0x40C0, 0x8000, 0xBF00, 0xBF80, 0xBFC0, 0xC000, 0xC040,
    0xC080, 0xC0C0, 0x0000, 0x3F00, 0x3F80, 0x3FC0, 0x4000, 0x4040, 0x4080, 0x40C0, 0x8000, 0xBF00, 0xBF80, 0xBFC0,
    0xC000, 0xC040, 0xC080, 0xC0C0};

// K rounded up to whole pairs of groups: pair_layout pads with zeros, so an odd last group adds nothing for its
// missing partner.
inline int64_t pair_padded(int64_t K) { return (K + 63) / 64 * 64; }

// One row of x (K elements, a multiple of 32) -> bf16 bits [pair_padded(K)]: per pair of groups (g, g + 1), the even
// elements of g, then of g + 1, then the odd elements of g, then of g + 1 (16 each). T: bf16, or fp32 holding bf16
// values (SwiGLU's rounded outputs), which the conversion keeps exactly.
template <typename T>
inline void pair_layout(const T* x, int64_t K, uint16_t* dst) {
  const int64_t G = K / 32;
  for (int64_t g = 0; g < G + (G & 1); g += 2) {
    for (int parity = 0; parity < 2; ++parity) {
      for (int member = 0; member < 2; ++member) {
        uint16_t* out = dst + 32 * g + 32 * parity + 16 * member;
        for (int i = 0; i < 16; ++i) {
          const c10::BFloat16 v =
              g + member < G ? c10::BFloat16(x[32 * (g + member) + 2 * i + parity]) : c10::BFloat16(0.0f);
          std::memcpy(out + i, &v, sizeof v);
        }
      }
    }
  }
}

// One output row for TT tokens. blk: [G, 16] bytes, sc: [G], xq: [TT][pair_padded(G * 32)] (pair_layout), rows xstride
// elements apart. Each token has its own accumulator, updated in the same order for any TT, so a token's result does
// not depend on the batch.
template <int TT>
inline void row_dot_dp(const uint8_t* blk, const uint8_t* sc, int64_t G, const uint16_t* xq, int64_t xstride,
                       const float* stab, float* res) {
  const __m512i table = _mm512_load_si512(kFp4Bf16Words);
  __m512 acc[TT];
  for (int t = 0; t < TT; ++t) acc[t] = _mm512_setzero_ps();
  for (int64_t g = 0; g < G; g += 2) {
    const bool both = g + 1 < G;
    const uint8_t* p = blk + 16 * g;
    prefetch_ahead(p, kStreamPrefetchBytes);
    // A lone last group: its partner's bytes read as zeros (code 0 is +0.0) and get its scale.
    const __m256i raw =
        both ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi8(0xFFFF, p);
    const __m512i codes = _mm512_cvtepu8_epi16(raw);
    const __m512bh even = (__m512bh)_mm512_permutexvar_epi16(codes, table);
    const __m512bh odd = (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(codes, 4), table);
    const __m512 scale =
        _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(stab[sc[g]]), _mm512_set1_ps(stab[sc[both ? g + 1 : g]]));
    const uint16_t* xg = xq + 32 * g;
#pragma GCC unroll 4
    for (int t = 0; t < TT; ++t) {
      const uint16_t* xt = xg + t * xstride;
      __m512 part = _mm512_dpbf16_ps(_mm512_setzero_ps(), even, (__m512bh)_mm512_loadu_si512(xt));
      part = _mm512_dpbf16_ps(part, odd, (__m512bh)_mm512_loadu_si512(xt + 32));
      acc[t] = _mm512_fmadd_ps(part, scale, acc[t]);
    }
  }
  reduce_lanes<TT>(acc, res);  // a fixed lane pairing per vector (common.h): the same bits alone or in a tile
}
#endif

// x [T, K] (fp32 or bf16, K a multiple of 32) as fp32 in the layout row_dot reads at this level.
inline std::vector<float> mxfp4_activations(const at::Tensor& x, int64_t T, int64_t K) {
  std::vector<float> xp(static_cast<size_t>(T * K));
  if (x.scalar_type() == at::kFloat) {
    mxfp4_layout(x.data_ptr<float>(), T, K, xp.data());
  } else {
    mxfp4_layout(x.data_ptr<c10::BFloat16>(), T, K, xp.data());
  }
  return xp;
}

}  // namespace GPTOSS_OP_NAMESPACE
