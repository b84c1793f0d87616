// The bf16 GEMV's row kernels and its driver, written once over a weight-row source so that the checkpoint's bf16
// rows (PlainBf16Rows, below; op bf16_linear in gemv.cpp) and the same rows held in 12 bits (gemv_bf16_packed.cpp)
// run the very same arithmetic: a row source only hands the kernels each group of 32 weights as the bf16 bits the
// checkpoint has, so both give the same sums, bit for bit.
//
// A row source (Row) has, for the level being compiled:
//   __m512i group512(int64_t g)                        the 32 bf16 words of group g (AVX-512)
//   void group256(int64_t g, __m256i& a, __m256i& b)   words 0-15 and 16-31 of group g (AVX2)
//   void group_words(int64_t g, uint16_t* out)         the 32 words (portable C++)
//   uint16_t word(int64_t k)                           one word (a row's tail past the last full group)
// Each kernel asks for the groups of a row in increasing order, once each, so a source may keep a cursor.
// A rows source (Rows) has N, K and `Row row(int64_t n) const`; one that decodes (kDecodes = true) also has
// `void unpack(int64_t n0, int64_t n1, uint16_t* out) const`, rows n0..n1 as bf16 bits (see bf16_gemv).
#pragma once

#include "common.h"

namespace GPTOSS_OP_NAMESPACE {
namespace {

// The checkpoint's bf16 rows, read in place.
struct PlainBf16Row {
  const uint16_t* w;
#if defined(__AVX512F__)
  __m512i group512(int64_t g) const {
    prefetch_ahead(w + 32 * g, g_bf16_prefetch_bytes);
    return _mm512_loadu_si512(w + 32 * g);
  }
#endif
#if defined(__AVX2__)
  void group256(int64_t g, __m256i& a, __m256i& b) const {
    prefetch_ahead(w + 32 * g, g_bf16_prefetch_bytes);
    a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * g));
    b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32 * g + 16));
  }
#endif
  void group_words(int64_t g, uint16_t* out) const {
    prefetch_ahead(w + 32 * g, g_bf16_prefetch_bytes);
    std::memcpy(out, w + 32 * g, 32 * sizeof(uint16_t));
  }
  uint16_t word(int64_t k) const { return w[k]; }
};

struct PlainBf16Rows {
  static constexpr bool kDecodes = false;
  const uint16_t* w;  // row `first`
  int64_t N;
  int64_t K;
  int64_t first = 0;  // the number of the row at w (a chunk's rows decoded into a scratch, see bf16_gemv)
  PlainBf16Row row(int64_t n) const { return PlainBf16Row{w + (n - first) * K}; }
};

// Token tile of the bf16 GEMV: as many tokens (up to 4) as keep their fp32 activations within ~24 KB of L1, and
// at least 2. At K=2880 that is 2: with 4 tokens the activations (46 KB) fall out of L1 and the kernel measured ~15%
// slower at T=4 than two 2-token passes, the second re-reading the chunk's rows from L2. At small K (a batch of 3
// decode tokens on a narrow model) one pass serves all of them, so each weight row is loaded into registers once.
constexpr int kBf16MaxTile = 4;
constexpr int64_t kBf16TileBytes = 24 << 10;

// Up to this K the bf16 GEMV uses fp32 FMAs whatever x's dtype (bf16_rows_dot); above it, bf16 x takes vdpbf16ps
// where the CPU has it (bf16_row_dot_dp). See both kernels for the measurements behind the split.
constexpr int64_t kBf16FmaMaxK = 1024;

inline int bf16_tile(int64_t K) { return token_tile(K, kBf16TileBytes, kBf16MaxTile); }

template <int TT, class Row>
inline void bf16_tail(Row& row, int64_t k0, int64_t K, const float* xp, int64_t xstride, float* res) {
  for (int64_t k = k0; k < K; ++k) {
    const float wk = bf16_bits_to_float(row.word(k));
    for (int t = 0; t < TT; ++t) res[t] += wk * xp[t * xstride + k];
  }
}

#if defined(__AVX512F__)
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

// RR output rows (1 or 2) for TT tokens. rows: RR row sources of K columns; xp: [TT][K] deinterleaved fp32, rows
// xstride apart; res: [RR][kBf16MaxTile]. Each (row, token) sum has its own two accumulators (even / odd elements)
// that take the groups in order, whatever RR and TT are, so a token's result does not depend on the batch or on the
// row pairing. Two rows per pass halve the activation loads per weight, which is what bounds a small-K GEMV (a narrow
// model's unembedding) at 3-4 tokens. Plain FMAs rather than vdpbf16ps: on the machines measured here vdpbf16ps
// issues at one per ~2.2 cycles against two FMAs per cycle, so widening the weights (two cheap ops shared by every
// token) and using FMAs is faster from 2 tokens up and equal at 1.
template <int RR, int TT, class Row>
inline void bf16_rows_dot(Row* rows, int64_t K, const float* xp, int64_t xstride, float (*res)[kBf16MaxTile]) {
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
    // Unrolled so that the arrays live in registers (a decoding row source's branch had kept this loop rolled and
    // the decoded weights on the stack).
#pragma GCC unroll 2
    for (int r = 0; r < RR; ++r) {
      const __m512i v = rows[r].group512(g);
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
    bf16_tail<TT>(rows[r], 32 * G, K, xp, xstride, res[r]);
  }
}

template <int TT, class Row>
inline void bf16_row_dot(Row& row, int64_t K, const float* xp, int64_t xstride, float* res) {
  float one[1][kBf16MaxTile];
  bf16_rows_dot<1, TT>(&row, K, xp, xstride, one);
  for (int t = 0; t < TT; ++t) res[t] = one[0][t];
}

#elif defined(__AVX2__) && defined(__FMA__)
// Four accumulators per token (even / odd elements of each half of a group), each taking the groups in order: with
// two, the two halves' FMAs formed a chain of two 4-cycle latencies per group, which bounded a fast-memory stream
// (the 5120 x 2880 qkv of 20b read at 45 GB/s on Zen 4) and any slower-to-decode row source more so. The halves are
// written out, not looped over: indexed by a loop variable, GCC kept the accumulators and the weights on the stack,
// and the packed rows' GEMV spent most of its time storing and reloading them.
template <int TT, class Row>
inline void bf16_row_dot(Row& row, int64_t K, const float* xp, int64_t xstride, float* res) {
  const int64_t G = K / 32;
  const __m256i hi_mask = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  __m256 even0[TT], odd0[TT], even1[TT], odd1[TT];  // [half][token]: elements 0-15 and 16-31 of each group
  for (int t = 0; t < TT; ++t) even0[t] = odd0[t] = even1[t] = odd1[t] = _mm256_setzero_ps();
  for (int64_t g = 0; g < G; ++g) {
    __m256i v0, v1;
    row.group256(g, v0, v1);
    const __m256 w0_even = _mm256_castsi256_ps(_mm256_slli_epi32(v0, 16));
    const __m256 w0_odd = _mm256_castsi256_ps(_mm256_and_si256(v0, hi_mask));
    const __m256 w1_even = _mm256_castsi256_ps(_mm256_slli_epi32(v1, 16));
    const __m256 w1_odd = _mm256_castsi256_ps(_mm256_and_si256(v1, hi_mask));
#pragma GCC unroll 4
    for (int t = 0; t < TT; ++t) {
      // x's group: [16 even, 16 odd]; half h's evens/odds are lanes 8h..8h+7 of each.
      const float* xg = xp + t * xstride + 32 * g;
      even0[t] = _mm256_fmadd_ps(w0_even, _mm256_loadu_ps(xg), even0[t]);
      odd0[t] = _mm256_fmadd_ps(w0_odd, _mm256_loadu_ps(xg + 16), odd0[t]);
      even1[t] = _mm256_fmadd_ps(w1_even, _mm256_loadu_ps(xg + 8), even1[t]);
      odd1[t] = _mm256_fmadd_ps(w1_odd, _mm256_loadu_ps(xg + 24), odd1[t]);
    }
  }
  for (int t = 0; t < TT; ++t) {
    res[t] = hsum8(_mm256_add_ps(_mm256_add_ps(even0[t], odd0[t]), _mm256_add_ps(even1[t], odd1[t])));
  }
  bf16_tail<TT>(row, 32 * G, K, xp, xstride, res);
}

#else
template <int TT, class Row>
inline void bf16_row_dot(Row& row, int64_t K, const float* xp, int64_t xstride, float* res) {
  const int64_t G = K / 32;
  float acc[TT] = {};
  uint16_t w[32];
  for (int64_t g = 0; g < G; ++g) {
    row.group_words(g, w);
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + 32 * g;
      float a = 0.0f;
      for (int j = 0; j < 16; ++j) {
        a += bf16_bits_to_float(w[2 * j]) * xg[j] + bf16_bits_to_float(w[2 * j + 1]) * xg[16 + j];
      }
      acc[t] += a;
    }
  }
  for (int t = 0; t < TT; ++t) res[t] = acc[t];
  bf16_tail<TT>(row, 32 * G, K, xp, xstride, res);
}
#endif

#ifdef GPTOSS_BF16_DOT
// bf16 x with AVX512-BF16 at large K: vdpbf16ps multiplies 32 bf16 pairs into 16 fp32 lanes (products exact, sums in
// fp32), so the weights need no widening and x stays bf16 ([T, K], no copy), half the cache footprint of fp32
// activations. It issues at only ~1 per 2.2 cycles here, but at K = 2880 three or four tokens' fp32 activations no
// longer fit L1 next to the weight stream, and this path measured faster there (12.5 vs 14.9 ms for 3 tokens on a
// 50k x 2880 matrix). Four accumulators per token, four groups per iteration, the same order for every tile size, so a
// token's result does not depend on the batch.
template <int TT, class Row>
inline void bf16_row_dot_dp(Row& row, int64_t K, const uint16_t* xb, int64_t xstride, float* res) {
  const int64_t G = K / 32;
  __m512 acc[TT][4];
  for (int t = 0; t < TT; ++t)
    for (int a = 0; a < 4; ++a) acc[t][a] = _mm512_setzero_ps();
  int64_t g = 0;
  // The four groups are named, not an array: with `wv[4]` filled in a loop, GCC stored each decoded group to the
  // stack and reloaded it, which cost a packed row twice the cycles of a plain one (L2-resident rows, Zen 4).
  for (; g + 4 <= G; g += 4) {
    const __m512bh w0 = (__m512bh)row.group512(g);
    const __m512bh w1 = (__m512bh)row.group512(g + 1);
    const __m512bh w2 = (__m512bh)row.group512(g + 2);
    const __m512bh w3 = (__m512bh)row.group512(g + 3);
#pragma GCC unroll 4
    for (int t = 0; t < TT; ++t) {
      const uint16_t* xg = xb + t * xstride + 32 * g;
      acc[t][0] = _mm512_dpbf16_ps(acc[t][0], w0, (__m512bh)_mm512_loadu_si512(xg));
      acc[t][1] = _mm512_dpbf16_ps(acc[t][1], w1, (__m512bh)_mm512_loadu_si512(xg + 32));
      acc[t][2] = _mm512_dpbf16_ps(acc[t][2], w2, (__m512bh)_mm512_loadu_si512(xg + 64));
      acc[t][3] = _mm512_dpbf16_ps(acc[t][3], w3, (__m512bh)_mm512_loadu_si512(xg + 96));
    }
  }
  for (; g < G; ++g) {
    const __m512bh wv = (__m512bh)row.group512(g);
    for (int t = 0; t < TT; ++t)
      acc[t][0] = _mm512_dpbf16_ps(acc[t][0], wv, (__m512bh)_mm512_loadu_si512(xb + t * xstride + 32 * g));
  }
  __m512 sums[TT];
  for (int t = 0; t < TT; ++t)
    sums[t] = _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
  reduce_lanes<TT>(sums, res);
  for (int64_t k = 32 * G; k < K; ++k) {
    const float wk = bf16_bits_to_float(row.word(k));
    for (int t = 0; t < TT; ++t) res[t] += wk * bf16_bits_to_float(xb[t * xstride + k]);
  }
}

template <class Rows>
void bf16_dispatch_row_dp(int tt, const Rows& rows, int64_t n, const uint16_t* xb, float* res) {
  auto row = rows.row(n);
  switch (tt) {
    case 4: bf16_row_dot_dp<4>(row, rows.K, xb, rows.K, res); break;
    case 3: bf16_row_dot_dp<3>(row, rows.K, xb, rows.K, res); break;
    case 2: bf16_row_dot_dp<2>(row, rows.K, xb, rows.K, res); break;
    default: bf16_row_dot_dp<1>(row, rows.K, xb, rows.K, res); break;
  }
}
#endif

// Rows n0..n1 for tokens t0..t0+tt of the bf16 GEMV into res_rows[n - n0][t] (fp32 sums, no bias). On AVX-512,
// tiles of 3-4 tokens take rows two at a time (see bf16_rows_dot; a pair gives each row exactly what a lone row
// would get); at 1-2 tokens, where loading the activations costs little, single rows streamed 25-45% faster (the
// unembedding of `mini` at one token, Zen 4, 2 threads, three alternating pairs).
template <int TT, class Rows>
void bf16_rows(const Rows& rows, int64_t n0, int64_t n1, const float* xp, float (*res_rows)[kBf16MaxTile]) {
  const int64_t K = rows.K;
  int64_t n = n0;
#if defined(__AVX512F__)
  if constexpr (TT >= 3) {
    for (; n + 2 <= n1; n += 2) {
      decltype(rows.row(n)) pair[2] = {rows.row(n), rows.row(n + 1)};
      bf16_rows_dot<2, TT>(pair, K, xp, K, res_rows + (n - n0));
    }
  }
#endif
  for (; n < n1; ++n) {
    auto row = rows.row(n);
    bf16_row_dot<TT>(row, K, xp, K, res_rows[n - n0]);
  }
}

template <class Rows>
void bf16_dispatch_rows(int tt, const Rows& rows, int64_t n0, int64_t n1, const float* xp,
                        float (*res_rows)[kBf16MaxTile]) {
  switch (tt) {
    case 4: bf16_rows<4>(rows, n0, n1, xp, res_rows); break;
    case 3: bf16_rows<3>(rows, n0, n1, xp, res_rows); break;
    case 2: bf16_rows<2>(rows, n0, n1, xp, res_rows); break;
    default: bf16_rows<1>(rows, n0, n1, xp, res_rows); break;
  }
}

// x [T, K] @ W.T + bias for the rows source W [N, K]: the whole bf16 GEMV past argument checks (see bf16_linear).
template <class Rows>
at::Tensor bf16_gemv(const at::Tensor& x, const Rows& rows, const std::optional<at::Tensor>& bias, bool fp32_out) {
  TORCH_CHECK(x.device().is_cpu(), "CPU tensors expected");
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), "x must be a contiguous [T, K] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  const int64_t N = rows.N;
  const int64_t K = rows.K;
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

  const bool out_f32 = out.scalar_type() == at::kFloat;
  float* out_f = out_f32 ? out.data_ptr<float>() : nullptr;
  c10::BFloat16* out_bf = out_f32 ? nullptr : out.data_ptr<c10::BFloat16>();
  const float* xpp = xp.data();
  const int tile = dp ? bf16_tile(K / 2) : bf16_tile(K);  // bf16 activations take half the L1 of fp32 ones

  // Same shared-counter scheduling as mxfp4_linear (see there); a chunk is ~256 KB of bf16 weights (45 rows at
  // K=2880), small enough that a descheduled thread's share is picked up, large enough to stream long contiguous
  // runs: each chunk restarts a thread's stream, and 64 KB chunks streamed the unembedding at 26.5-30.6 GB/s in 7 runs
  // where 256 KB ones gave 28.8-47.1 (2 threads, AMD EPYC Zen 4, alternating runs).
  const int64_t chunk = std::max<int64_t>(1, (int64_t{256} << 10) / std::max<int64_t>(1, 2 * K));
  const int64_t n_chunks = (N + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), n_chunks);
  // A decoding row source with more tokens than one tile takes: each chunk is decoded once into bf16 rows (~256 KB,
  // L2) that every token tile then reads, instead of decoding it again per tile and beside the tile's FMAs, which made
  // the packed rows' GEMV slower than the plain one at 4 tokens (Zen 4, 2 threads; tiles of 2 fp32 tokens). Where one
  // tile takes every token (up to 4 bf16 tokens with vdpbf16ps) the rows decode on the fly, each group once anyway:
  // 4 tokens through `mini`'s unembedding took 34 ms against 59 ms through the scratch (Xeon, Emerald Rapids
  // class, 2 threads).
  const bool scratch = Rows::kDecodes && T > tile;
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<float> res_store(static_cast<size_t>(chunk * kBf16MaxTile));
    auto* res_rows = reinterpret_cast<float (*)[kBf16MaxTile]>(res_store.data());
    std::vector<uint16_t> decoded(scratch ? static_cast<size_t>(chunk * K) : 0);
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t n0 = c * chunk;
      const int64_t n1 = std::min(N, n0 + chunk);
      // Sums of rows n0..n1 for tokens t0..t0+tt from the row source `src` into res_rows.
      auto sum_tile = [&](const auto& src, int tt, int64_t t0) {
#ifdef GPTOSS_BF16_DOT
        if (dp) {
          for (int64_t n = n0; n < n1; ++n) bf16_dispatch_row_dp(tt, src, n, xb + t0 * K, res_rows[n - n0]);
          return;
        }
#endif
        bf16_dispatch_rows(tt, src, n0, n1, xpp + t0 * K, res_rows);
      };
      if constexpr (Rows::kDecodes) {
        if (scratch) rows.unpack(n0, n1, decoded.data());
      }
      for (int64_t t0 = 0; t0 < T;) {
        const int tt = static_cast<int>(std::min<int64_t>(T - t0, tile));
        if (scratch) {
          sum_tile(PlainBf16Rows{decoded.data(), N, K, n0}, tt, t0);
        } else {
          sum_tile(rows, tt, t0);
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

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE
