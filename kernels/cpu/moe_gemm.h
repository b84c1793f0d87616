// Prefill's MXFP4 expert projections as a blocked GEMM (used by moe.cpp when a call is not decode-sized).
//
// Decode (row_dot, mxfp4_rows.h) decodes a weight row once per tile of up to 4 tokens and forms each token's sum
// along K, so every activation load feeds one FMA and the nibble decoding is repeated for every 4 tokens. In prefill
// an expert sees tens of tokens at once (512 prompt tokens x top-4 of 32 experts is 64 per expert on average), so
// here each block of weights is decoded once per call into a packed fp32 panel, [kGemmDepth][kGemmRows] (k-major:
// the kGemmRows outputs of one k are adjacent), and a register-blocked micro-kernel multiplies it with every token
// tile of the expert: per k it loads the panel's two vectors once and broadcasts one activation per token, so the
// loop is bound by FMAs, not loads or decoding.
//
// The sums' order differs from row_dot's (k in blocks, each output's sum accumulated in one lane), so a token's
// result here is not bit-equal to its decode result; it is compared with the torch reference, like BLAS prefill.
#pragma once

#include "moe_gemm_avx512.h"
#include "mxfp4_rows.h"

namespace GPTOSS_OP_NAMESPACE {

#if !defined(__AVX512F__)  // AVX-512: moe_gemm_avx512.h
// NR: outputs per packed panel, two 8-lane vectors.
constexpr int kGemmRows = 16;
// MR: tokens per micro-tile. 6 tokens x 2 vectors = 12 accumulators, plus the panel's 2 vectors and 1 broadcast:
// 15 of AVX2's 16 vector registers.
constexpr int kGemmTokens = 6;
// KC: k per packed block (8 MXFP4 groups). The block (16 KB) and a tile's activations (6 KB) stay in L1 while the
// micro-kernel runs over every token tile of the expert.
constexpr int64_t kGemmDepth = 256;

// panel[k][r] = W[n0 + r][element of position k] (scaled fp32) for the groups g0 .. g0 + ng - 1 and r < kGemmRows,
// the positions k in the level's activation layout (mxfp4_layout), so that the micro-kernel meets each weight with
// its activation by index. blk: [N, G, 16] bytes, sc: [N, G]. Scaling by a power of two is exact, as in the torch
// reference's decode. N is a multiple of 32 (2I or H, both whole groups), so a panel is always full.
#if defined(__AVX2__) && defined(__FMA__)
// Rows of 8 vectors in, columns out: v[c][r] = v[r][c].
inline void transpose8(__m256 v[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]);  // r0[0] r1[0] r0[1] r1[1] | r0[4] r1[4] r0[5] r1[5]
  const __m256 t1 = _mm256_unpackhi_ps(v[0], v[1]);  // elements 2, 3 | 6, 7
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]);
  const __m256 t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]);
  const __m256 t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]);
  const __m256 t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);  // rows 0-3 of columns 0 | 4
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  // columns 1 | 5
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);  // columns 2 | 6
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  // columns 3 | 7
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44);  // rows 4-7, likewise
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44);
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  v[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  v[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  v[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  v[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// AVX2: decode_pair gives each row's two groups as 8 vectors of 8 layout positions; eight rows' vectors at one
// position, transposed, are that position's 8 panel entries (each 8 k for half a panel row).
inline void pack_panel(const uint8_t* blk, const uint8_t* sc, int64_t G, int64_t n0, int64_t g0, int64_t ng,
                       const float* stab, float* panel) {
  for (int half = 0; half < kGemmRows / 8; ++half) {
    for (int64_t gp = 0; gp < ng; gp += 2) {
      const bool two = gp + 1 < ng;
      __m256 w[8][8];  // [row][vector]: rows n0 + 8 * half + r, vectors 0-3 group gp, 4-7 group gp + 1
      for (int r = 0; r < 8; ++r) {
        const int64_t row = n0 + 8 * half + r;
        const uint8_t* b = blk + (row * G + g0 + gp) * 16;
        const uint8_t* s = sc + row * G + g0 + gp;
        // An odd last group: its 16 bytes in both lanes; only vectors 0-3 are used.
        decode_pair(two ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b))
                        : _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b))),
                    w[r]);
        const __m256 s0 = _mm256_set1_ps(stab[s[0]]);
        const __m256 s1 = _mm256_set1_ps(two ? stab[s[1]] : 0.0f);
        for (int v = 0; v < 4; ++v) w[r][v] = _mm256_mul_ps(w[r][v], s0);
        for (int v = 4; v < 8; ++v) w[r][v] = _mm256_mul_ps(w[r][v], s1);
      }
      for (int v = 0; v < (two ? 8 : 4); ++v) {
        __m256 col[8];
        for (int r = 0; r < 8; ++r) col[r] = w[r][v];
        transpose8(col);  // col[i]: layout position 8 * (v % 4) + i of group gp + v / 4, rows 0-7 of the half
        const int64_t k0 = (gp + v / 4) * 32 + 8 * (v % 4);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(panel + (k0 + i) * kGemmRows + 8 * half, col[i]);
      }
    }
  }
}
#else
// Portable: the layout is [16 even, 16 odd] per group (deinterleave), so byte j's low nibble (element 2j)
// goes to position j and its high nibble (element 2j + 1) to position 16 + j.
inline void pack_panel(const uint8_t* blk, const uint8_t* sc, int64_t G, int64_t n0, int64_t g0, int64_t ng,
                       const float* stab, float* panel) {
  for (int r = 0; r < kGemmRows; ++r) {
    const uint8_t* b = blk + ((n0 + r) * G + g0) * 16;
    const uint8_t* s = sc + (n0 + r) * G + g0;
    for (int64_t g = 0; g < ng; ++g) {
      const float scale = stab[s[g]];
      float* dst = panel + g * 32 * kGemmRows + r;
      for (int j = 0; j < 16; ++j) {
        dst[j * kGemmRows] = kFp4[b[16 * g + j] & 0x0F] * scale;
        dst[(16 + j) * kGemmRows] = kFp4[b[16 * g + j] >> 4] * scale;
      }
    }
  }
}
#endif

// c[i][0..15] (+)= sum over k < kc of x[i][k] * panel[k][0..15] for MR tokens; x rows xstride apart.
template <int MR>
inline void micro_tile(const float* panel, int64_t kc, const float* x, int64_t xstride, float* c, bool first) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[MR][2];
  for (int i = 0; i < MR; ++i) {
    acc[i][0] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + i * kGemmRows);
    acc[i][1] = first ? _mm256_setzero_ps() : _mm256_loadu_ps(c + i * kGemmRows + 8);
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(panel + k * kGemmRows);
    const __m256 b1 = _mm256_loadu_ps(panel + k * kGemmRows + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 a = _mm256_broadcast_ss(x + i * xstride + k);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm256_storeu_ps(c + i * kGemmRows, acc[i][0]);
    _mm256_storeu_ps(c + i * kGemmRows + 8, acc[i][1]);
  }
#else
  float acc[MR][kGemmRows];
  for (int i = 0; i < MR; ++i) {
    for (int r = 0; r < kGemmRows; ++r) acc[i][r] = first ? 0.0f : c[i * kGemmRows + r];
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const float a = x[i * xstride + k];
      for (int r = 0; r < kGemmRows; ++r) acc[i][r] += a * panel[k * kGemmRows + r];
    }
  }
  for (int i = 0; i < MR; ++i) std::memcpy(c + i * kGemmRows, acc[i], sizeof acc[i]);
#endif
}

#endif  // __AVX512F__

// One level's GEMM for activations of type Act: Panel, the packed panel's element; kDepth, k per packed block;
// pack(blk, sc, G, n0, g0, ng, stab, panel) and tile<MR>(panel, kc, x, xstride, c, first) as above.
template <typename Act>
struct GemmKernel;

// fp32 activations in the level's layout (mxfp4_layout), every level: its pack_panel, micro_tile and kGemmDepth.
template <>
struct GemmKernel<float> {
  using Panel = float;
  static constexpr int64_t kDepth = kGemmDepth;
  static void pack(const uint8_t* blk, const uint8_t* sc, int64_t G, int64_t n0, int64_t g0, int64_t ng,
                   const float* stab, Panel* panel) {
    pack_panel(blk, sc, G, n0, g0, ng, stab, panel);
  }
  template <int MR>
  static void tile(const Panel* panel, int64_t kc, const float* x, int64_t xstride, float* c, bool first) {
    micro_tile<MR>(panel, kc, x, xstride, c, first);
  }
};

#if defined(GPTOSS_BF16_DOT)
template <>
struct GemmKernel<c10::BFloat16> {
  using Panel = uint32_t;
  static constexpr int64_t kDepth = kGemmDepthBf16;
  static void pack(const uint8_t* blk, const uint8_t* sc, int64_t G, int64_t n0, int64_t g0, int64_t ng,
                   const float* stab, Panel* panel) {
    pack_panel_bf16(blk, sc, G, n0, g0, ng, stab, panel);
  }
  template <int MR>
  static void tile(const Panel* panel, int64_t kc, const c10::BFloat16* x, int64_t xstride, float* c, bool first) {
    micro_tile_bf16<MR>(panel, kc, x, xstride, c, first);
  }
};
#endif

// c [tokens][kGemmRows] (+)= x [tokens][K] (rows K apart, in the kernel's order) . panel block, any token count:
// full tiles of kGemmTokens, then one tile of the rest.
template <typename Act, int MR = kGemmTokens>
inline void panel_times_tokens(const typename GemmKernel<Act>::Panel* panel, int64_t kc, const Act* x, int64_t K,
                               int64_t tokens, float* c, bool first) {
  if constexpr (MR == kGemmTokens) {
    for (; tokens >= kGemmTokens; tokens -= kGemmTokens, x += kGemmTokens * K, c += kGemmTokens * kGemmRows) {
      GemmKernel<Act>::template tile<kGemmTokens>(panel, kc, x, K, c, first);
    }
  }
  if constexpr (MR > 1) {
    if (tokens == MR - 1) {
      GemmKernel<Act>::template tile<MR - 1>(panel, kc, x, K, c, first);
    } else {
      panel_times_tokens<Act, MR - 1>(panel, kc, x, K, tokens, c, first);
    }
  }
}

}  // namespace GPTOSS_OP_NAMESPACE
