// The AVX-512 panels and micro-kernels of prefill's blocked MXFP4 GEMM (moe_gemm.h holds the contract and the AVX2 and
// portable ones).
//
// A panel holds kGemmRows = 32 outputs per k, two 512-bit vectors, so the micro-kernel's 8 tokens x 2 vectors = 16
// accumulators leave half of the 32 registers free and each broadcast activation feeds two FMAs. Packing decodes one
// group of 16 rows into 16-lane vectors along k (row-major, what the nibble lookup gives) and turns each 16 x 16 tile
// into k-major with one in-register transpose, so no weight is decoded with scalar code.
//
// With AVX512-BF16 and bf16 activations the panel holds bf16 pairs instead: entry (k-pair j, row r) is the 32-bit
// word [W[r][2j] | W[r][2j + 1] << 16], the two weights of byte j of a group (its low and high nibble), and the
// activations stay in their natural order, where x[2j], x[2j + 1] is the same pair. vdpbf16ps then does two
// multiply-adds per lane: twice the fp32 FMA's work per instruction, and half the panel's bytes. It is exact where
// fp32 FMAs are: every scaled E2M1 weight has at most two significant bits (a bf16 value), the activations are bf16
// already, and the products are summed in fp32.
#pragma once

#include "mxfp4_rows.h"

#if defined(__AVX512F__)
namespace GPTOSS_OP_NAMESPACE {

constexpr int kGemmRows = 32;
constexpr int kGemmTokens = 8;

// 16 x 16 transpose of 32-bit lanes: r[i] lane j -> r[j] lane i. Four rounds of 16 shuffles.
inline void transpose16x16(__m512i r[16]) {
  __m512i t[16];
  // Per 128-bit lane L: rows 2i, 2i + 1 interleaved, elements 4L, 4L + 1 | 4L + 2, 4L + 3.
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  __m512i u[16];  // u[4i + c] lane L: rows 4i .. 4i + 3 of element 4L + c
  for (int i = 0; i < 4; ++i) {
    u[4 * i + 0] = _mm512_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    // 128-bit lanes: 0x88 takes lanes 0, 2 of each operand, 0xDD lanes 1, 3.
    const __m512i p_even = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x88);   // rows 0-3, 4-7 of elements c, 8 + c
    const __m512i q_even = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x88);  // rows 8-11, 12-15
    const __m512i p_odd = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xDD);    // elements 4 + c, 12 + c
    const __m512i q_odd = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xDD);
    r[c] = _mm512_shuffle_i32x4(p_even, q_even, 0x88);
    r[8 + c] = _mm512_shuffle_i32x4(p_even, q_even, 0xDD);
    r[4 + c] = _mm512_shuffle_i32x4(p_odd, q_odd, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(p_odd, q_odd, 0xDD);
  }
}

// Group g of rows row0 .. row0 + 15, scaled, as lo[r] = the 16 low-nibble weights (elements 2j) and hi[r] the 16
// high-nibble weights (elements 2j + 1) of row r, in fp32 bits.
inline void decode_group_rows(const uint8_t* blk, const uint8_t* sc, int64_t G, int64_t row0, int64_t g,
                              const float* stab, __m512i lo[16], __m512i hi[16]) {
  const __m512 lut = _mm512_load_ps(kFp4);
  for (int r = 0; r < 16; ++r) {
    const int64_t row = row0 + r;
    const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + (row * G + g) * 16)));
    const __m512 s = _mm512_set1_ps(stab[sc[row * G + g]]);
    lo[r] = _mm512_castps_si512(_mm512_mul_ps(_mm512_permutexvar_ps(v, lut), s));  // vpermps reads index bits 0-3
    hi[r] = _mm512_castps_si512(_mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), lut), s));
  }
}

// fp32 panel[k][kGemmRows], k in the deinterleaved layout (mxfp4_layout): position j of a group is element 2j, 16 + j
// is element 2j + 1.
constexpr int64_t kGemmDepth = 128;  // 128 x 32 x 4 B = 16 KB

inline void pack_panel(const uint8_t* blk, const uint8_t* sc, int64_t G, int64_t n0, int64_t g0, int64_t ng,
                           const float* stab, float* panel) {
  for (int half = 0; half < kGemmRows / 16; ++half) {
    for (int64_t g = 0; g < ng; ++g) {
      __m512i lo[16];
      __m512i hi[16];
      decode_group_rows(blk, sc, G, n0 + 16 * half, g0 + g, stab, lo, hi);
      transpose16x16(lo);  // lo[j]: element 2j of the 16 rows
      transpose16x16(hi);
      float* dst = panel + g * 32 * kGemmRows + 16 * half;
      for (int j = 0; j < 16; ++j) {
        _mm512_storeu_si512(dst + j * kGemmRows, lo[j]);
        _mm512_storeu_si512(dst + (16 + j) * kGemmRows, hi[j]);
      }
    }
  }
}

template <int MR>
inline void micro_tile(const float* panel, int64_t kc, const float* x, int64_t xstride, float* c, bool first) {
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * kGemmRows);
    acc[i][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * kGemmRows + 16);
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(panel + k * kGemmRows);
    const __m512 b1 = _mm512_loadu_ps(panel + k * kGemmRows + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(x[i * xstride + k]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * kGemmRows, acc[i][0]);
    _mm512_storeu_ps(c + i * kGemmRows + 16, acc[i][1]);
  }
}

#if defined(GPTOSS_BF16_DOT)
// bf16-pair panel[j][kGemmRows] (32-bit words), j the k-pair: group g's byte b is pair 16 g + b.
constexpr int64_t kGemmDepthBf16 = 256;  // 128 pairs x 32 x 4 B = 16 KB

inline void pack_panel_bf16(const uint8_t* blk, const uint8_t* sc, int64_t G, int64_t n0, int64_t g0, int64_t ng,
                            const float* stab, uint32_t* panel) {
  for (int half = 0; half < kGemmRows / 16; ++half) {
    for (int64_t g = 0; g < ng; ++g) {
      __m512i lo[16];
      __m512i hi[16];
      decode_group_rows(blk, sc, G, n0 + 16 * half, g0 + g, stab, lo, hi);
      for (int r = 0; r < 16; ++r) {
        // A scaled E2M1 weight's fp32 bits end in 16 zeros, so its bf16 bits are the top half, exactly: the low
        // word of each lane from lo (shifted down), the high word from hi.
        lo[r] = _mm512_mask_blend_epi16(0xAAAAAAAAu, _mm512_srli_epi32(lo[r], 16), hi[r]);
      }
      transpose16x16(lo);  // lo[b]: the weight pair of byte b of the 16 rows
      uint32_t* dst = panel + g * 16 * kGemmRows + 16 * half;
      for (int b = 0; b < 16; ++b) _mm512_storeu_si512(dst + b * kGemmRows, lo[b]);
    }
  }
}

// kc elements (kc / 2 pairs); x: bf16 rows in natural order, xstride elements apart.
template <int MR>
inline void micro_tile_bf16(const uint32_t* panel, int64_t kc, const c10::BFloat16* x, int64_t xstride, float* c,
                            bool first) {
  __m512 acc[MR][2];
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * kGemmRows);
    acc[i][1] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(c + i * kGemmRows + 16);
  }
  for (int64_t j = 0; j < kc / 2; ++j) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(panel + j * kGemmRows);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(panel + j * kGemmRows + 16);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      int32_t pair;  // x[2j], x[2j + 1]: the activations of the two weights in each panel word
      std::memcpy(&pair, x + i * xstride + 2 * j, sizeof pair);
      const __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
      acc[i][0] = _mm512_dpbf16_ps(acc[i][0], a, b0);
      acc[i][1] = _mm512_dpbf16_ps(acc[i][1], a, b1);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * kGemmRows, acc[i][0]);
    _mm512_storeu_ps(c + i * kGemmRows + 16, acc[i][1]);
  }
}
#endif

}  // namespace GPTOSS_OP_NAMESPACE
#endif  // __AVX512F__
