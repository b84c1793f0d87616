// Decode attention straight from the KV cache store (Python wrapper: kernels/cpu_mxfp4.py, attention_decode).
//
// One query per sequence against its cached keys, like attention_decode_ref, without the reference's per-sequence
// gathers and fp32 copies of the whole visible cache (~15 torch ops per layer and sequence). A work item is one
// sequence and a run of its KV heads (a thread's consecutive heads, up to kMaxRunHeads): each K/V row is read once and
// serves the G query heads that share it, and the run's rows of one position lie side by side in the store
// ([.., pos, kvh, D]), so the run streams them as one contiguous block per position rather than one 1 KB-strided row
// per head and pass. The vectorised paths walk the positions in blocks of kKvBlock with an online softmax (running max
// and denominator per query head, fp32; the sink joins the denominator): K and V are read once, in one pass, and no
// score buffer the size of the context is written and read back. Each head's arithmetic depends on its own rows and
// the block boundaries only, so each sequence's result is independent of the batch and the thread count.
#include "common.h"
#include "vec8.h"

#include <type_traits>

namespace GPTOSS_OP_NAMESPACE {
namespace {

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

// Positions per block of the online softmax: a run's block of K and V rows (16 KB at 4 heads of D = 64 in bf16), and
// the next one being prefetched, stay within a 32 KB L1 (Zen 2/3) while each head scores the block and adds it up;
// the per-block work (running max, rescaling, the accumulators' loads and stores) is spread over 16 positions. Blocks
// of 32 positions prefetched 32 ahead were 1-6 % faster on a 48 KB-L1 Xeon (Emerald Rapids class).
#ifdef GPTOSS_KV_BLOCK
constexpr int64_t kKvBlock = GPTOSS_KV_BLOCK;
#else
constexpr int64_t kKvBlock = 16;
#endif
static_assert(kKvBlock % 16 == 0, "whole 16-lane vectors of scores");

// How many positions ahead the run's K and V rows are prefetched, spread over the block's heads. With these
// prefetches a pre-pass over the first positions (which the per-head loops of the former two-pass kernel needed after
// a layer's weight streams left the cache cold) no longer changed a call's time: 126 against 127 us at 512 positions
// and 1.04 ms at 8,192, cold (Xeon, Emerald Rapids class, 2 threads).
#ifdef GPTOSS_KV_ROWS_AHEAD
constexpr int64_t kRowsAhead = GPTOSS_KV_ROWS_AHEAD;
#else
constexpr int64_t kRowsAhead = 16;
#endif

// The most KV heads one run takes: bounds the run's fp32 state (queries and accumulators, 2 x 16 KB per head at the
// widest head group) while covering a thread's share of gpt-oss's 8 KV heads.
constexpr int64_t kMaxRunHeads = 8;

// Prefetches `bytes` of the cache from `row` on (a run's rows of one position). An asm statement rather than
// __builtin_prefetch: GCC counts the builtin as free of side effects, and since C++ loops must make progress
// (-ffinite-loops at -O2) it deletes a loop that does nothing else, as these loops do; every prefetch of this file was
// gone from the -O3 build.
inline void prefetch_kv_row(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (int64_t b0 = 0; b0 < bytes; b0 += 64) {
#if defined(__x86_64__) || defined(__i386__)
    asm volatile("prefetcht0 %0" : : "m"(p[b0]));
#else
    __builtin_prefetch(p + b0, 0, 3);
#endif
  }
}

// Where one sequence's cached rows are: the stores are [R, S, Hkv, D]; position `first + j` of the sequence in `slot`
// (modulo S in a ring), KV head kvh.
template <typename T>
struct KvRows {
  const T* k;
  const T* v;
  int64_t slot, first, S, Hkv, D;
  bool ring;
  int64_t offset(int64_t j, int64_t kvh) const {
    const int64_t pos = first + j;
    return ((slot * S + (ring ? pos % S : pos)) * Hkv + kvh) * D;
  }
  // Prefetches the K and V rows of `heads` heads from kvh0 on at position j (contiguous in the store).
  void prefetch(int64_t j, int64_t kvh0, int64_t heads) const {
    const int64_t o = offset(j, kvh0);
    const int64_t bytes = heads * D * static_cast<int64_t>(sizeof(T));
    prefetch_kv_row(k + o, bytes);
    prefetch_kv_row(v + o, bytes);
  }
  // Head h's share of the positions kRowsAhead on from block j0 (of n): the block's prefetches spread over its heads.
  void prefetch_share(int64_t j0, int64_t h, int64_t kvh0, int64_t heads, int64_t n) const {
    const int64_t ahead = j0 + kRowsAhead;
    for (int64_t j = ahead + h * kKvBlock / heads; j < std::min(n, ahead + (h + 1) * kKvBlock / heads); ++j)
      prefetch(j, kvh0, heads);
  }
};

// One thread's fp32 work buffers, 64-byte aligned for the vector loads and stores; kept across the thread's runs.
class Scratch {
 public:
  float* get(int which, int64_t count) {
    std::vector<float>& b = bufs_[which];
    if (b.size() < static_cast<size_t>(count + 16)) b.resize(static_cast<size_t>(count + 16));
    const auto address = reinterpret_cast<uintptr_t>(b.data());
    return reinterpret_cast<float*>((address + 63) & ~static_cast<uintptr_t>(63));
  }

 private:
  std::vector<float> bufs_[4];
};

// The running state of a run's online softmax, per query head hg = h * G + g: the largest score so far (the sink
// counts as one, so it starts there) and the denominator relative to it (the sink's exp(sink - max) = 1).
struct RunningSoftmax {
  float max[kMaxRunHeads * 16];
  float denom[kMaxRunHeads * 16];
  void start(const float* sinks, int64_t count) {
    for (int64_t i = 0; i < count; ++i) {
      max[i] = sinks[i];
      denom[i] = 1.0f;  // a -inf sink also works: the first block's rescaling by exp(-inf) = 0 removes it
    }
  }
  // A new block whose largest score is block_max: returns the factor the accumulators are rescaled by (1 when the max
  // stands) and rescales the denominator; the block's exp(s - max) are then added to denom by the caller.
  float update(int64_t hg, float block_max) {
    if (!(block_max > max[hg])) return 1.0f;
    const float alpha = std::exp(max[hg] - block_max);
    max[hg] = block_max;
    denom[hg] *= alpha;
    return alpha;
  }
};

// A block's K and V rows of the run's first head (the ring may wrap inside a block; head h's row is D elements on).
// Rows past the last position point at zeros (kZeroRows, long enough for every head of a run), so that whole vectors
// of positions can be scored.
template <typename T>
alignas(64) inline const T kZeroRows[kMaxRunHeads * 256] = {};

template <typename T>
struct BlockRows {
  const T* k[kKvBlock];
  const T* v[kKvBlock];
  void fill(const KvRows<T>& kv, int64_t j0, int64_t rows, int64_t kvh0) {
    for (int64_t r = 0; r < kKvBlock; ++r) {
      if (r < rows) {
        const int64_t o = kv.offset(j0 + r, kvh0);
        k[r] = kv.k + o;
        v[r] = kv.v + o;
      } else {
        k[r] = v[r] = kZeroRows<T>;
      }
    }
  }
};

// Vector work reads rows in "split order": each chunk of 2L elements (L lanes) as two L-lane vectors, for bf16 the
// even and the odd elements (a shift and a mask widen them, half the work of widening in order), for fp32 the two
// halves. Queries are split the same way for the dot products, and the P.V accumulators are un-split on the way out.
#if defined(__AVX512F__)
inline void split32(const float* p, __m512& lo, __m512& hi) {
  lo = _mm512_loadu_ps(p);
  hi = _mm512_loadu_ps(p + 16);
}
inline void split32(const c10::BFloat16* p, __m512& even, __m512& odd) {
  const __m512i x = _mm512_loadu_si512(p);
  even = _mm512_castsi512_ps(_mm512_slli_epi32(x, 16));
  odd = _mm512_castsi512_ps(_mm512_and_si512(x, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
}
#else
inline void split16(const float* p, __m256& lo, __m256& hi) {
  lo = _mm256_loadu_ps(p);
  hi = _mm256_loadu_ps(p + 8);
}
inline void split16(const c10::BFloat16* p, __m256& even, __m256& odd) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  even = _mm256_castsi256_ps(_mm256_slli_epi32(x, 16));
  odd = _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}
#endif

// Writes the run's outputs: each query head's accumulators (split order, chunks of 2L) divided by its denominator, in
// element order.
template <int L, typename T>
inline void write_outputs(const float* acc, const float* denom, int64_t HG, int64_t D, T* out) {
  for (int64_t hg = 0; hg < HG; ++hg) {
    const float inv = 1.0f / denom[hg];
    for (int64_t i = 0; i < D; i += 2 * L) {
      const float* lo = acc + hg * D + i;
      T* dst = out + hg * D + i;
      for (int j = 0; j < L; ++j) {
        if constexpr (std::is_same_v<T, float>) {  // fp32 rows are split into halves
          dst[j] = lo[j] * inv;
          dst[L + j] = lo[L + j] * inv;
        } else {  // bf16 rows into even and odd elements
          dst[2 * j] = T(lo[j] * inv);
          dst[2 * j + 1] = T(lo[L + j] * inv);
        }
      }
    }
  }
}
template <int L, typename T>
inline void read_chunk(const T* src, float* split) {
  if constexpr (std::is_same_v<T, float>) {
    for (int i = 0; i < 2 * L; ++i) split[i] = src[i];
  } else {
    for (int i = 0; i < L; ++i) {
      split[i] = static_cast<float>(src[2 * i]);
      split[L + i] = static_cast<float>(src[2 * i + 1]);
    }
  }
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

// The 16 lane sums of v[0..15] as one vector (lane i = sum of v[i]): halves, then quarters, then lanes 2 and 1 apart
// added, each vector's lanes paired the same way wherever it sits.
inline __m512 reduce16(const __m512* v) {
  __m512 w[8], x[4];
  for (int i = 0; i < 8; ++i) {  // quarters [a0 + a2, a1 + a3, b0 + b2, b1 + b3] of a = v[2i], b = v[2i + 1]
    w[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                         _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));
  }
  for (int i = 0; i < 4; ++i) {  // quarter t: vector 4i + t's four partial lanes
    x[i] = _mm512_add_ps(_mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(w[2 * i], w[2 * i + 1], 0xDD));
  }
  // Within each quarter: lanes 2 apart, then 1 apart; quarter t, lane k ends up holding vector t + 4k.
  const __m512 y0 = _mm512_add_ps(_mm512_shuffle_ps(x[0], x[1], 0x44), _mm512_shuffle_ps(x[0], x[1], 0xEE));
  const __m512 y1 = _mm512_add_ps(_mm512_shuffle_ps(x[2], x[3], 0x44), _mm512_shuffle_ps(x[2], x[3], 0xEE));
  const __m512 z = _mm512_add_ps(_mm512_shuffle_ps(y0, y1, 0x88), _mm512_shuffle_ps(y0, y1, 0xDD));
  const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  return _mm512_permutexvar_ps(order, z);
}

// Scores of one head's block: p[g][r] = sm_scale * q_g . k_r for the kKvBlock positions, 16 at a time (16 row
// accumulators reduced together), each row widened once into kf, in split order like qf. (vdpbf16ps straight on the
// bf16 rows was slower: 79 against 66 cycles per position and KV head on an Emerald Rapids Xeon, one port for it
// against two for FMAs.)
template <int kG, int kD, typename T>
inline void block_scores_avx512(const float* qf, const BlockRows<T>& rows, int64_t h, int64_t G,
                                int64_t D, float sm_scale, float* kf, float* p) {
  const __m512 scale = _mm512_set1_ps(sm_scale);
  const int64_t C = D / 16;
  for (int64_t r = 0; r < kKvBlock; ++r) {
    for (int64_t c = 0; c < C; c += 2) {
      __m512 lo, hi;
      split32(rows.k[r] + h * D + 16 * c, lo, hi);
      _mm512_store_ps(kf + r * D + 16 * c, lo);
      _mm512_store_ps(kf + r * D + 16 * c + 16, hi);
    }
  }
  for (int64_t g = 0; g < G; ++g) {
    const float* qg = qf + (h * G + g) * D;
    for (int64_t r0 = 0; r0 < kKvBlock; r0 += 16) {
      const float* kb = kf + r0 * D;
      __m512 dots[16];
      __m512 qv = _mm512_load_ps(qg);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) dots[r] = _mm512_mul_ps(qv, _mm512_load_ps(kb + r * D));
      for (int64_t c = 1; c < C; ++c) {
        qv = _mm512_load_ps(qg + 16 * c);
#pragma GCC unroll 16
        for (int r = 0; r < 16; ++r) dots[r] = _mm512_fmadd_ps(qv, _mm512_load_ps(kb + r * D + 16 * c), dots[r]);
      }
      _mm512_store_ps(p + g * kKvBlock + r0, _mm512_mul_ps(reduce16(dots), scale));
    }
  }
}

// One sequence's decode attention for `heads` KV heads from kvh0 on (q, sinks and out start at the run's first query
// head), vectorised: per block of kKvBlock positions and per head, the G query heads' scores, the online softmax,
// and P.V with G x 32 accumulators in registers per pass (kG and kD fixed at compile time for gpt-oss's shape keep
// them there). Returns false for head shapes it does not take (D not a multiple of 32, D > 256 or G > 16); the
// caller then runs the scalar loop.
template <int kG, int kD, typename T>
bool attention_run_avx512(const T* q, const KvRows<T>& kv, const float* sinks, int64_t n, int64_t kvh0, int64_t heads,
                          int64_t G_any, float sm_scale, Scratch& scratch, T* out) {
  const int64_t G = kG > 0 ? kG : G_any;
  const int64_t D = kD > 0 ? kD : kv.D;
  if (D % 32 != 0 || D > 256 || G > 16 || n < 1) return false;
  const int64_t C2 = D / 32;  // chunks of 32 elements, each two 16-lane vectors in split order
  const int64_t HG = heads * G;
  float* qf = scratch.get(0, HG * D);        // queries in split order, [heads, G, D]
  float* acc = scratch.get(1, HG * D);       // running P.V in split order, [heads, G, D]
  float* kf = scratch.get(2, kKvBlock * D);  // one head's block of K rows in split order, [kKvBlock, D]
  float* p = scratch.get(3, G * kKvBlock);   // one head's block of scores, then weights, [G, kKvBlock]
  for (int64_t i = 0; i < HG * D; i += 32) read_chunk<16>(q + i, qf + i);
  std::fill(acc, acc + HG * D, 0.0f);
  BlockRows<T> rows;
  RunningSoftmax soft;
  soft.start(sinks, HG);
  for (int64_t j0 = 0; j0 < n; j0 += kKvBlock) {
    const int64_t live_rows = std::min(kKvBlock, n - j0);
    rows.fill(kv, j0, live_rows, kvh0);
    for (int64_t h = 0; h < heads; ++h) {
      kv.prefetch_share(j0, h, kvh0, heads, n);
      block_scores_avx512<kG, kD, T>(qf, rows, h, G, D, sm_scale, kf, p);
      // Online softmax: each query head's block max, the rescaling of its running state, the weights exp(s - max).
      const __mmask16 tail = static_cast<__mmask16>(live_rows % 16 ? (1u << (live_rows % 16)) - 1u : 0xFFFFu);
      for (int64_t g = 0; g < G; ++g) {
        float* pg = p + g * kKvBlock;
        const int64_t hg = h * G + g;
        __m512 m = _mm512_set1_ps(-INFINITY);
        for (int64_t r0 = 0; r0 < live_rows; r0 += 16) {
          const __mmask16 live = r0 + 16 <= live_rows ? 0xFFFF : tail;
          m = _mm512_mask_max_ps(m, live, m, _mm512_load_ps(pg + r0));
        }
        const float alpha = soft.update(hg, _mm512_reduce_max_ps(m));
        if (alpha != 1.0f) {
          float* a = acc + hg * D;
          for (int64_t c = 0; c < 2 * C2; ++c)
            _mm512_store_ps(a + 16 * c, _mm512_mul_ps(_mm512_load_ps(a + 16 * c), _mm512_set1_ps(alpha)));
        }
        const __m512 mv = _mm512_set1_ps(soft.max[hg]);
        __m512 sum = _mm512_setzero_ps();
        for (int64_t r0 = 0; r0 < kKvBlock; r0 += 16) {
          const __mmask16 live = r0 + 16 <= live_rows ? 0xFFFF : r0 < live_rows ? tail : 0;
          const __m512 e = _mm512_maskz_mov_ps(live, exp_ps(_mm512_sub_ps(_mm512_load_ps(pg + r0), mv)));
          _mm512_store_ps(pg + r0, e);
          sum = _mm512_add_ps(sum, e);
        }
        soft.denom[hg] += _mm512_reduce_add_ps(sum);
      }
      // P.V: one chunk of 32 output dims (its two split-order vectors) of the G query heads per pass.
      float* acc_h = acc + h * G * D;
      for (int64_t c = 0; c < C2; ++c) {
        __m512 a[16][2];
#pragma GCC unroll 16
        for (int64_t g = 0; g < G; ++g) {
          a[g][0] = _mm512_load_ps(acc_h + g * D + 32 * c);
          a[g][1] = _mm512_load_ps(acc_h + g * D + 32 * c + 16);
        }
        for (int64_t r = 0; r < live_rows; ++r) {
          __m512 lo, hi;
          split32(rows.v[r] + h * D + 32 * c, lo, hi);
#pragma GCC unroll 16
          for (int64_t g = 0; g < G; ++g) {
            const __m512 pv = _mm512_set1_ps(p[g * kKvBlock + r]);
            a[g][0] = _mm512_fmadd_ps(pv, lo, a[g][0]);
            a[g][1] = _mm512_fmadd_ps(pv, hi, a[g][1]);
          }
        }
#pragma GCC unroll 16
        for (int64_t g = 0; g < G; ++g) {
          _mm512_store_ps(acc_h + g * D + 32 * c, a[g][0]);
          _mm512_store_ps(acc_h + g * D + 32 * c + 16, a[g][1]);
        }
      }
    }
  }
  write_outputs<16, T>(acc, soft.denom, HG, D, out);
  return true;
}

#elif defined(__AVX2__) && defined(__FMA__)
// The 8 lane sums of v[0..7] as one vector (lane i = sum of v[i]), each with the same pairing wherever it sits.
inline __m256 reduce8(const __m256* v) {
  const __m256 t0 = _mm256_hadd_ps(v[0], v[1]);
  const __m256 t1 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 t2 = _mm256_hadd_ps(v[4], v[5]);
  const __m256 t3 = _mm256_hadd_ps(v[6], v[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1);  // lane i (i < 4): v[i]'s lanes 0-3; lane 4 + i: its lanes 4-7
  const __m256 u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

inline float hmax256(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

// The AVX-512 run's algorithm on 8 lanes: K rows widened into kf in split order, scores 8 positions at a time (8 row
// accumulators reduced together), and P.V for one chunk of 16 output dims of up to 4 query heads per pass over the
// block's V rows (8 accumulators: with 16 registers, all G x 32 of the AVX-512 pass would not fit). Returns false for
// head shapes it does not take (D not a multiple of 16, D > 256 or G > 16); the caller then runs the scalar loop.
template <int kG, int kD, typename T>
bool attention_run_avx2(const T* q, const KvRows<T>& kv, const float* sinks, int64_t n, int64_t kvh0, int64_t heads,
                        int64_t G_any, float sm_scale, Scratch& scratch, T* out) {
  const int64_t G = kG > 0 ? kG : G_any;
  const int64_t D = kD > 0 ? kD : kv.D;
  if (D % 16 != 0 || D > 256 || G > 16 || n < 1) return false;
  const int64_t C = D / 8;    // 8-lane vectors per row
  const int64_t C2 = D / 16;  // chunks of 16 elements, each two vectors in split order
  const int64_t HG = heads * G;
  float* qf = scratch.get(0, HG * D);        // queries in split order, [heads, G, D]
  float* acc = scratch.get(1, HG * D);       // running P.V in split order, [heads, G, D]
  float* kf = scratch.get(2, kKvBlock * D);  // one head's block of K rows in split order, [kKvBlock, D]
  float* p = scratch.get(3, G * kKvBlock);   // one head's block of scores, then weights, [G, kKvBlock]
  for (int64_t i = 0; i < HG * D; i += 16) read_chunk<8>(q + i, qf + i);
  std::fill(acc, acc + HG * D, 0.0f);
  const __m256 scale = _mm256_set1_ps(sm_scale);
  alignas(32) static const int32_t lane_index[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const __m256i lanes = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_index));
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  BlockRows<T> rows;
  RunningSoftmax soft;
  soft.start(sinks, HG);
  for (int64_t j0 = 0; j0 < n; j0 += kKvBlock) {
    const int64_t live_rows = std::min(kKvBlock, n - j0);
    rows.fill(kv, j0, live_rows, kvh0);
    for (int64_t h = 0; h < heads; ++h) {
      kv.prefetch_share(j0, h, kvh0, heads, n);
      for (int64_t r = 0; r < live_rows; ++r) {
        for (int64_t c = 0; c < C2; ++c) {
          __m256 lo, hi;
          split16(rows.k[r] + h * D + 16 * c, lo, hi);
          _mm256_store_ps(kf + r * D + 16 * c, lo);
          _mm256_store_ps(kf + r * D + 16 * c + 8, hi);
        }
      }
      const int64_t padded = (live_rows + 7) / 8 * 8;
      std::fill(kf + live_rows * D, kf + padded * D, 0.0f);
      for (int64_t g = 0; g < G; ++g) {
        const float* qg = qf + (h * G + g) * D;
        for (int64_t r0 = 0; r0 < padded; r0 += 8) {
          const float* kb = kf + r0 * D;
          __m256 dots[8];
          __m256 qv = _mm256_load_ps(qg);
#pragma GCC unroll 8
          for (int r = 0; r < 8; ++r) dots[r] = _mm256_mul_ps(qv, _mm256_load_ps(kb + r * D));
          for (int64_t c = 1; c < C; ++c) {
            qv = _mm256_load_ps(qg + 8 * c);
#pragma GCC unroll 8
            for (int r = 0; r < 8; ++r) dots[r] = _mm256_fmadd_ps(qv, _mm256_load_ps(kb + r * D + 8 * c), dots[r]);
          }
          _mm256_store_ps(p + g * kKvBlock + r0, _mm256_mul_ps(reduce8(dots), scale));
        }
      }
      for (int64_t g = 0; g < G; ++g) {
        float* pg = p + g * kKvBlock;
        const int64_t hg = h * G + g;
        __m256 m = neg_inf;
        for (int64_t r0 = 0; r0 < padded; r0 += 8) {
          const __m256 live =
              _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(live_rows - r0)), lanes));
          m = _mm256_max_ps(m, _mm256_blendv_ps(neg_inf, _mm256_load_ps(pg + r0), live));
        }
        const float alpha = soft.update(hg, hmax256(m));
        if (alpha != 1.0f) {
          float* a = acc + hg * D;
          for (int64_t c = 0; c < C; ++c)
            _mm256_store_ps(a + 8 * c, _mm256_mul_ps(_mm256_load_ps(a + 8 * c), _mm256_set1_ps(alpha)));
        }
        const __m256 mv = _mm256_set1_ps(soft.max[hg]);
        __m256 sum = _mm256_setzero_ps();
        for (int64_t r0 = 0; r0 < padded; r0 += 8) {
          const __m256 live =
              _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(live_rows - r0)), lanes));
          const __m256 e = _mm256_and_ps(live, exp8(_mm256_sub_ps(_mm256_load_ps(pg + r0), mv)));
          _mm256_store_ps(pg + r0, e);
          sum = _mm256_add_ps(sum, e);
        }
        soft.denom[hg] += hsum8(sum);
      }
      // P.V: one chunk of 16 output dims (its two split-order vectors) of up to 4 query heads per pass.
      for (int64_t c = 0; c < C2; ++c) {
        for (int64_t g0 = 0; g0 < G; g0 += 4) {
          const int64_t gn = std::min<int64_t>(4, G - g0);
          float* acc_g = acc + (h * G + g0) * D + 16 * c;
          __m256 a[4][2];
          for (int g = 0; g < 4; ++g) {
            const float* ag = acc_g + std::min<int64_t>(g, gn - 1) * D;
            a[g][0] = _mm256_load_ps(ag);
            a[g][1] = _mm256_load_ps(ag + 8);
          }
          const float* pg = p + g0 * kKvBlock;
          for (int64_t r = 0; r < live_rows; ++r) {
            __m256 lo, hi;
            split16(rows.v[r] + h * D + 16 * c, lo, hi);
#pragma GCC unroll 4
            for (int g = 0; g < 4; ++g) {
              if (g < gn) {
                const __m256 pv = _mm256_set1_ps(pg[g * kKvBlock + r]);
                a[g][0] = _mm256_fmadd_ps(pv, lo, a[g][0]);
                a[g][1] = _mm256_fmadd_ps(pv, hi, a[g][1]);
              }
            }
          }
          for (int64_t g = 0; g < gn; ++g) {
            _mm256_store_ps(acc_g + g * D, a[g][0]);
            _mm256_store_ps(acc_g + g * D + 8, a[g][1]);
          }
        }
      }
    }
  }
  write_outputs<8, T>(acc, soft.denom, HG, D, out);
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
    Scratch scratch;
    std::vector<float> qf(static_cast<size_t>(G * D));
    std::vector<float> acc(static_cast<size_t>(G * D));
    std::vector<float> scores;
    for (int64_t item = i0; item < i1;) {
      const int64_t b = item / Hkv, kvh = item % Hkv;
      const int64_t length = lengths[b];
      const int64_t held = ring ? std::min(length, S) : length;
      int64_t first = length - held;  // oldest held position
      if (window > 0) first = std::max(first, length - window);  // q at length-1 sees (q - window, q]
      const int64_t n = length - first;
      const KvRows<T> kv{kp, vp, slots[b], first, S, Hkv, D, ring};
      const int64_t head0 = b * Hq + kvh * G;  // the run's first query head
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
      const int64_t heads = std::min({Hkv - kvh, i1 - item, kMaxRunHeads});
      // gpt-oss's shape (G = 8, D = 64) compiled as constants; any other through the same code with runtime sizes.
      const bool gpt_oss = G == 8 && D == 64;
#if defined(__AVX512F__)
      const auto run = gpt_oss ? attention_run_avx512<8, 64, T> : attention_run_avx512<0, 0, T>;
#else
      const auto run = gpt_oss ? attention_run_avx2<8, 64, T> : attention_run_avx2<0, 0, T>;
#endif
      if (run(qp + head0 * D, kv, sinks + kvh * G, n, kvh, heads, G, sm_scale, scratch, op + head0 * D)) {
        item += heads;
        continue;
      }
#endif
      for (int64_t g = 0; g < G; ++g)
        for (int64_t d = 0; d < D; ++d) qf[g * D + d] = static_cast<float>(qp[(head0 + g) * D + d]);
      scores.assign(static_cast<size_t>(G * std::max<int64_t>(n, 1)), 0.0f);
      for (int64_t j = 0; j < n; ++j) {
        const T* krow = kp + kv.offset(j, kvh);
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
        const T* vrow = vp + kv.offset(j, kvh);
        for (int64_t g = 0; g < G; ++g) {
          const float pj = scores[g * n + j];
          float* a = acc.data() + g * D;
          for (int64_t d = 0; d < D; ++d) a[d] += pj * static_cast<float>(vrow[d]);
        }
      }
      for (int64_t g = 0; g < G; ++g)
        for (int64_t d = 0; d < D; ++d) op[(head0 + g) * D + d] = T(acc[g * D + d] / denom[g]);
      ++item;
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

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("attention_decode(Tensor q, Tensor k_store, Tensor v_store, Tensor sinks, Tensor slots, Tensor lengths, "
        "int window, bool ring, float sm_scale) -> Tensor",
        &GPTOSS_OP_NAMESPACE::attention_decode);
}
