// Decode attention straight from the KV cache store (Python wrapper: kernels/cpu_mxfp4.py, attention_decode).
//
// One query per sequence against its cached keys, like attention_decode_ref, without the reference's per-sequence
// gathers and fp32 copies of the whole visible cache (~15 torch ops per layer and sequence). A work item is one
// sequence (or, past kChunk positions on the vector paths, one chunk of it) and a run of its KV heads (a thread's
// consecutive heads, up to kMaxRunHeads): each K/V row is read once and serves the G query heads that share it, and the
// run's rows of one position lie side by side in the store ([.., pos, kvh, D]), so the run streams them as one
// contiguous block per position rather than one 1 KB-strided row per head and pass. The vectorised paths walk the
// positions in blocks of kKvBlock with an online softmax (running max and denominator per query head, fp32; the sink
// joins the denominator): K and V are read once, in one pass, and no score buffer the size of the context is written
// and read back. They hold query heads in vector lanes (kGroup), so neither the scores nor the softmax sum across
// lanes. Each head's arithmetic depends on its own rows and the block and chunk boundaries only (chunks merge in
// order), so each sequence's result is independent of the batch and the thread count.
#include "common.h"
#include "vec8.h"

#include <cstring>
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
// of 32 were no faster even with a 48 KB L1 (one layer's call at 8,192 and 32,768 positions, cold, 2 threads, Xeon of
// the Emerald Rapids class: the same at avx512bf16, 10-15 % slower at avx2).
#ifdef GPTOSS_KV_BLOCK
constexpr int64_t kKvBlock = GPTOSS_KV_BLOCK;
#else
constexpr int64_t kKvBlock = 16;
#endif
static_assert(kKvBlock % 16 == 0, "whole 16-lane vectors of scores");

// How many blocks ahead the rows are prefetched: 2 and 3 measured the same as 1 (one layer's call, cold, as above).
#ifdef GPTOSS_KV_BLOCKS_AHEAD
constexpr int64_t kBlocksAhead = GPTOSS_KV_BLOCKS_AHEAD;
#else
constexpr int64_t kBlocksAhead = 1;
#endif

// The most KV heads one run takes: bounds the run's fp32 state (queries and accumulators, 2 x G x D floats per head)
// while covering a thread's share of gpt-oss's 8 KV heads.
constexpr int64_t kMaxRunHeads = 8;

// Prefetches `bytes` of the cache from `row` on (one head's K or V row). The vector paths prefetch the next block's
// rows of the head they work on one row per iteration of their score and P.V loops, rather than all of a block's rows
// at once: a burst of tens of prefetches waits for the core's few line-fill buffers, and the loop waits with it (one
// layer's call at 32,768 positions, cold, 2 threads: 5.0 -> 3.6 ms at avx512bf16, 6.7 -> 5.5 ms at avx2, with the
// lanes below; Xeon, Emerald Rapids class). An asm statement rather than __builtin_prefetch: GCC counts the builtin as
// free of side effects, and since C++ loops must make progress (-ffinite-loops at -O2) it deletes a loop that does
// nothing else, as these loops do; every prefetch of this file was gone from the -O3 build.
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
  std::vector<float> bufs_[6];
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
  // The block of positions j0 on (of n; none past n).
  void fill(const KvRows<T>& kv, int64_t j0, int64_t n, int64_t kvh0) {
    for (int64_t r = 0; r < kKvBlock; ++r) {
      if (j0 + r < n) {
        const int64_t o = kv.offset(j0 + r, kvh0);
        k[r] = kv.k + o;
        v[r] = kv.v + o;
      } else {
        k[r] = v[r] = kZeroRows<T>;
      }
    }
  }
  // Head h's rows of the block (D elements on per head from the run's first head's).
  void head_rows(int64_t h, int64_t D, const T** k_out, const T** v_out) const {
    for (int64_t r = 0; r < kKvBlock; ++r) {
      k_out[r] = k[r] + h * D;
      v_out[r] = v[r] + h * D;
    }
  }
};

// The vector paths put query heads in vector lanes: a KV head's G query heads in lane groups of kGroup (AVX2: lane g;
// AVX-512: lanes 2g and 2g + 1, one per element of a pair). Scoring is then one FMA per widened K element (AVX2) or
// element pair (AVX-512) with the element broadcast, with no horizontal sums, and the online softmax runs on whole
// vectors of query heads: the running max, the rescaling factor and the denominator of the group at once.
constexpr int64_t kGroup = 8;
static_assert(kKvBlock >= kGroup, "a block's K buffer holds a group's query rows while they are interleaved");

// Interleaves a lane group's query rows for the score loop: rows holds the group's kGroup query rows ([kGroup, D],
// scaled, widened in the order of the K rows, zero past the group's last head); qg gets vector i = the rows' elements
// i * P .. i * P + P - 1, head g's in lanes P * g on ([D / P, kGroup * P]; P elements share a vector: 2 on AVX-512, 1
// on AVX2).
template <int P>
inline void interleave_group_queries(const float* rows, int64_t D, float* qg) {
  for (int64_t i = 0; i < D / P; ++i)
    for (int64_t g = 0; g < kGroup; ++g)
      std::memcpy(qg + (i * kGroup + g) * P, rows + g * D + i * P, P * sizeof(float));
}

// One lane group's queries for the score loop ([D / P, kGroup * P]): its gn query rows widened by widen_row (the K
// rows' widening, so both share one element order) and scaled, through `rows` ([kGroup, D]).
template <int P, typename T, typename WidenRow>
inline void group_queries(const T* q, int64_t gn, int64_t D, float sm_scale, WidenRow widen_row, float* rows,
                          float* qg) {
  std::fill(rows, rows + kGroup * D, 0.0f);
  for (int64_t g = 0; g < gn; ++g) widen_row(q + g * D, rows + g * D, D);
  for (int64_t i = 0; i < gn * D; ++i) rows[i] *= sm_scale;
  interleave_group_queries<P>(rows, D, qg);
}

// A run's work buffers in the thread's Scratch, for both vector paths (L lanes per vector).
struct RunBuffers {
  float* qg;     // queries per (head, lane group), [D / P, kGroup * P] each (group_queries)
  float* acc;    // running P.V in split order, [heads, G, D], zeroed
  float* kf;     // one head's block of K rows, widened, [kKvBlock, D]
  float* p;      // one group's block of scores, then weights, in score lanes
  float* state;  // per (head, group): the running max, then the denominator, L floats each
  float* denom;  // per query head, from the state at the end
  RunBuffers(Scratch& scratch, int64_t heads, int64_t groups, int64_t G, int64_t D, int64_t L)
      : qg(scratch.get(0, heads * groups * kGroup * D)),
        acc(scratch.get(1, heads * G * D)),
        kf(scratch.get(2, kKvBlock * D)),
        p(scratch.get(3, kKvBlock * kGroup)),
        state(scratch.get(4, heads * groups * 2 * L)),
        denom(scratch.get(5, heads * G)) {
    std::fill(acc, acc + heads * G * D, 0.0f);
  }
};

// Walks a run's positions in blocks of kKvBlock, the same way on both vector paths: per block and head, the block's K
// rows widened into kf and head h's rows of the block kBlocksAhead on (for the loops to prefetch), then
// group(h, gr, rows, next_k, next_v, live_rows) for each lane group gr of the head's query heads. Always inlined: left
// to GCC, the AVX2 run came out 1.4 % slower than with the loops written out in it.
template <typename T, typename WidenRow, typename Group>
[[gnu::always_inline]] inline void walk_blocks(const KvRows<T>& kv, int64_t n, int64_t kvh0, int64_t heads,
                                               int64_t groups, int64_t D, WidenRow widen_row, float* kf, Group group) {
  BlockRows<T> rows, next;
  for (int64_t j0 = 0; j0 < n; j0 += kKvBlock) {
    const int64_t live_rows = std::min(kKvBlock, n - j0);
    rows.fill(kv, j0, n, kvh0);
    next.fill(kv, j0 + kBlocksAhead * kKvBlock, n, kvh0);
    for (int64_t h = 0; h < heads; ++h) {
      const T* next_k[kKvBlock];
      const T* next_v[kKvBlock];
      next.head_rows(h, D, next_k, next_v);
      for (int64_t r = 0; r < kKvBlock; ++r) widen_row(rows.k[r] + h * D, kf + r * D, D);
      for (int64_t gr = 0; gr < groups; ++gr) group(h, gr, rows, next_k, next_v, live_rows);
    }
  }
}

// Whether this build's vector path takes head_dim D (whole chunks of 32 on AVX-512, of 16 on AVX2; kZeroRows bounds
// D); other shapes run the scalar loop.
constexpr bool vector_path_takes(int64_t D) {
#if defined(__AVX512F__)
  return D % 32 == 0 && D <= 256;
#elif defined(__AVX2__) && defined(__FMA__)
  return D % 16 == 0 && D <= 256;
#else
  static_cast<void>(D);
  return false;  // the scalar build has none
#endif
}

// V rows are read in "split order": each chunk of 2L elements (L lanes) as two L-lane vectors, for bf16 the even and
// the odd elements (a shift and a mask widen them, half the work of widening in order), for fp32 the two halves. The
// P.V accumulators are un-split on the way out; AVX2 widens its K rows the same way.
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

// A chunk's state for merge_chunks: per query head, its accumulators (split order), then its running max (written by
// the caller) and its denominator. [HG, D + 2].
inline void write_partial(const float* acc, const float* denom, int64_t HG, int64_t D, float* partial) {
  for (int64_t hg = 0; hg < HG; ++hg) {
    std::copy(acc + hg * D, acc + (hg + 1) * D, partial + hg * (D + 2));
    partial[hg * (D + 2) + D + 1] = denom[hg];
  }
}

// One query head's output from its chunks' states (each [D + 2], `stride` floats apart, in position order): each
// chunk's accumulators and denominator rescaled to the largest running max and added up, in chunk order. acc: D
// floats of work space.
template <int L, typename T>
inline void merge_chunks(const float* parts, int64_t chunks, int64_t stride, int64_t D, float* acc, T* out) {
  float top = -INFINITY;
  for (int64_t c = 0; c < chunks; ++c) top = std::max(top, parts[c * stride + D]);
  float denom = 0.0f;
  std::fill(acc, acc + D, 0.0f);
  for (int64_t c = 0; c < chunks; ++c) {
    const float* part = parts + c * stride;
    const float w = std::exp(part[D] - top);
    denom += part[D + 1] * w;
    for (int64_t d = 0; d < D; ++d) acc[d] += part[d] * w;
  }
  write_outputs<L, T>(acc, &denom, 1, D, out);
}

// Multiplies query head hg's accumulators by alpha (its running max moved by log(1 / alpha)).
inline void rescale_row(float* acc, int64_t hg, int64_t D, float alpha) {
  float* a = acc + hg * D;
  for (int64_t d = 0; d < D; ++d) a[d] *= alpha;
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

// 32 elements of a K row widened to fp32 with neighbouring elements side by side, so that one 64-bit broadcast
// carries a pair: bf16 by unpacking with zeros (each 128-bit lane's elements 0-3, then its elements 4-7), fp32 as is.
template <typename T>
inline void widen_pairs32(const T* src, float* dst) {
  if constexpr (std::is_same_v<T, float>) {
    _mm512_store_ps(dst, _mm512_loadu_ps(src));
    _mm512_store_ps(dst + 16, _mm512_loadu_ps(src + 16));
  } else {
    const __m512i x = _mm512_loadu_si512(src);
    _mm512_store_si512(dst, _mm512_unpacklo_epi16(_mm512_setzero_si512(), x));
    _mm512_store_si512(dst + 16, _mm512_unpackhi_epi16(_mm512_setzero_si512(), x));
  }
}

// A K (or query) row of D elements widened by widen_pairs32.
template <typename T>
inline void widen_row_avx512(const T* src, float* dst, int64_t D) {
  for (int64_t c = 0; c < D; c += 32) widen_pairs32(src + c, dst + c);
}

// Both floats at p in every 64-bit lane pair of a vector.
inline __m512 broadcast_pair(const float* p) {
  double pair;
  std::memcpy(&pair, p, sizeof pair);
  return _mm512_castpd_ps(_mm512_set1_pd(pair));
}

// One lane group's scores of a block, from its queries qg ([D / 2, 16]) and the block's widened K rows kf: position
// r's vector sums lane 2g + t over the pairs' elements t, and each two positions' vectors are added pairwise into one,
// so scores[16 m + 4 (g / 2) + 2 (r % 2) + g % 2] is query head g's score at r = 2m + r % 2 ([kKvBlock / 2, 16]).
// Given next_k (this head's K rows of the next block), it prefetches them, one row per iteration of its first 16.
template <int kD, typename T>
inline void block_scores_avx512(const float* qg, const float* kf, int64_t D_any, const T* const* next_k,
                                float* scores) {
  const int64_t D = kD > 0 ? kD : D_any;
  for (int64_t r0 = 0; r0 < kKvBlock; r0 += 16) {
    __m512 s[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) s[r] = _mm512_setzero_ps();
    const float* kb = kf + r0 * D;
    for (int64_t i = 0; i < D / 2; ++i) {
      if (next_k != nullptr && i < 16) prefetch_kv_row(next_k[r0 + i], D * static_cast<int64_t>(sizeof(T)));
      const __m512 qv = _mm512_load_ps(qg + 16 * i);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) s[r] = _mm512_fmadd_ps(qv, broadcast_pair(kb + r * D + 2 * i), s[r]);
    }
#pragma GCC unroll 8
    for (int m = 0; m < 8; ++m) {
      const __m512 a = s[2 * m], b = s[2 * m + 1];
      _mm512_store_ps(scores + 8 * r0 + 16 * m,
                      _mm512_add_ps(_mm512_shuffle_ps(a, b, 0x88), _mm512_shuffle_ps(a, b, 0xDD)));
    }
  }
}

// One sequence's decode attention for `heads` KV heads from kvh0 on (q, sinks and out start at the run's first query
// head), vectorised: per block of kKvBlock positions and per head, the block's K rows widened once, then per lane
// group of query heads the scores, the online softmax on vectors of heads and P.V with the group's 8 x 32
// accumulators in registers per pass (kG and kD fixed at compile time for gpt-oss's shape). Returns false for head
// shapes it does not take (D not a multiple of 32 or D > 256); the caller then runs the scalar loop.
template <int kG, int kD, typename T>
bool attention_run_avx512(const T* q, const KvRows<T>& kv, const float* sinks, int64_t n, int64_t kvh0, int64_t heads,
                          int64_t G_any, float sm_scale, Scratch& scratch, T* out, float* partial) {
  const int64_t G = kG > 0 ? kG : G_any;
  const int64_t D = kD > 0 ? kD : kv.D;
  if (!vector_path_takes(D) || n < 1) return false;
  const int64_t C2 = D / 32;                      // chunks of 32 elements
  const int64_t NG = (G + kGroup - 1) / kGroup;  // lane groups per KV head
  const int64_t HG = heads * G;
  const RunBuffers buf(scratch, heads, NG, G, D, 16);
  float *qg = buf.qg, *acc = buf.acc, *kf = buf.kf, *p = buf.p, *state = buf.state, *denom = buf.denom;
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t gr = 0; gr < NG; ++gr) {
      const int64_t g0 = h * G + gr * kGroup, gn = std::min(kGroup, G - gr * kGroup);
      group_queries<2>(q + g0 * D, gn, D, sm_scale, widen_row_avx512<T>, kf,  // kf: free until the blocks
                       qg + (h * NG + gr) * kGroup * D);
      // Score lanes 4 (g / 2) + 2 t + g % 2: the running max is the sink (both t), the denominator the sink's
      // exp(sink - max) = 1 (t = 0 only; the two halves are added at the end).
      float* st = state + (h * NG + gr) * 32;
      for (int lane = 0; lane < 16; ++lane) {
        const int64_t g = 2 * (lane / 4) + lane % 2;
        if (sinks == nullptr) {  // a later chunk of a long sequence: no sink, nothing seen yet
          st[lane] = -INFINITY;
          st[16 + lane] = 0.0f;
        } else {
          st[lane] = g < gn ? sinks[g0 + g] : 0.0f;  // a -inf sink also works: exp(-inf) = 0 rescales it away
          st[16 + lane] = (lane / 2) % 2 == 0 ? 1.0f : 0.0f;
        }
      }
    }
  }
  const __m512 one = _mm512_set1_ps(1.0f);
  walk_blocks(kv, n, kvh0, heads, NG, D, widen_row_avx512<T>, kf,
              [&](int64_t h, int64_t gr, const BlockRows<T>& rows, const T* const* next_k, const T* const* next_v,
                  int64_t live_rows) {
    const int64_t g0 = h * G + gr * kGroup, gn = std::min(kGroup, G - gr * kGroup);
    float* st = state + (h * NG + gr) * 32;
    block_scores_avx512<kD, T>(qg + (h * NG + gr) * kGroup * D, kf, D, gr == 0 ? next_k : nullptr, p);
    // Online softmax on the group's lanes: positions 2m (lanes with t = 0, mask 0x3333) and 2m + 1 (0xCCCC).
    const int64_t live_pairs = (live_rows + 1) / 2;
    const auto live = [&](int64_t m) -> __mmask16 {
      return static_cast<__mmask16>(2 * m + 1 < live_rows ? 0xFFFF : 0x3333);
    };
    __m512 block_max = _mm512_set1_ps(-INFINITY);
    for (int64_t m = 0; m < live_pairs; ++m)
      block_max = _mm512_mask_max_ps(block_max, live(m), block_max, _mm512_load_ps(p + 16 * m));
    block_max = _mm512_max_ps(block_max, _mm512_permute_ps(block_max, 0x4E));  // both positions of a pair
    const __m512 old_max = _mm512_load_ps(st);
    const __m512 new_max = _mm512_max_ps(old_max, block_max);
    __m512 den = _mm512_load_ps(st + 16);
    const __mmask16 moved = _mm512_cmp_ps_mask(new_max, old_max, _CMP_GT_OQ);
    if (moved) {
      const __m512 alpha = _mm512_mask_mov_ps(one, moved, exp_ps(_mm512_sub_ps(old_max, new_max)));
      alignas(64) float alphas[16];
      _mm512_store_ps(alphas, alpha);
      for (int64_t g = 0; g < gn; ++g) {
        const float a = alphas[4 * (g / 2) + g % 2];
        if (a != 1.0f) rescale_row(acc, g0 + g, D, a);
      }
      den = _mm512_mul_ps(den, alpha);
    }
    _mm512_store_ps(st, new_max);
    for (int64_t m = 0; m < live_pairs; ++m) {
      const __m512 e = _mm512_maskz_mov_ps(live(m), exp_ps(_mm512_sub_ps(_mm512_load_ps(p + 16 * m), new_max)));
      _mm512_store_ps(p + 16 * m, e);
      den = _mm512_add_ps(den, e);
    }
    _mm512_store_ps(st + 16, den);
    // P.V: one chunk of 32 output dims (its two split-order vectors) of the group's query heads per pass.
    float* acc_g = acc + g0 * D;
    for (int64_t c = 0; c < C2; ++c) {
      __m512 a[kGroup][2];
#pragma GCC unroll 8
      for (int64_t g = 0; g < kGroup; ++g) {
        if (g < gn) {
          a[g][0] = _mm512_load_ps(acc_g + g * D + 32 * c);
          a[g][1] = _mm512_load_ps(acc_g + g * D + 32 * c + 16);
        }
      }
      for (int64_t r = 0; r < live_rows; ++r) {
        if (gr == 0 && c == 0) prefetch_kv_row(next_v[r], D * static_cast<int64_t>(sizeof(T)));
        __m512 lo, hi;
        split32(rows.v[r] + h * D + 32 * c, lo, hi);
        const float* pr = p + 16 * (r / 2) + 2 * (r % 2);
#pragma GCC unroll 8
        for (int64_t g = 0; g < kGroup; ++g) {
          if (g < gn) {
            const __m512 pv = _mm512_set1_ps(pr[4 * (g / 2) + g % 2]);
            a[g][0] = _mm512_fmadd_ps(pv, lo, a[g][0]);
            a[g][1] = _mm512_fmadd_ps(pv, hi, a[g][1]);
          }
        }
      }
#pragma GCC unroll 8
      for (int64_t g = 0; g < kGroup; ++g) {
        if (g < gn) {
          _mm512_store_ps(acc_g + g * D + 32 * c, a[g][0]);
          _mm512_store_ps(acc_g + g * D + 32 * c + 16, a[g][1]);
        }
      }
    }
              });
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t gr = 0; gr < NG; ++gr) {
      const float* st = state + (h * NG + gr) * 32;
      const int64_t g0 = h * G + gr * kGroup, gn = std::min(kGroup, G - gr * kGroup);
      for (int64_t g = 0; g < gn; ++g) {
        const int64_t lane = 4 * (g / 2) + g % 2;
        denom[g0 + g] = st[16 + lane] + st[16 + lane + 2];
        if (partial != nullptr) partial[(g0 + g) * (D + 2) + D] = st[lane];  // the running max
      }
    }
  }
  if (partial != nullptr) {
    write_partial(acc, denom, HG, D, partial);
    return true;
  }
  write_outputs<16, T>(acc, denom, HG, D, out);
  return true;
}

#elif defined(__AVX2__) && defined(__FMA__)
// A K (or query) row of D elements widened in split order.
template <typename T>
inline void widen_row_avx2(const T* src, float* dst, int64_t D) {
  for (int64_t c = 0; c < D; c += 16) {
    __m256 lo, hi;
    split16(src + c, lo, hi);
    _mm256_store_ps(dst + c, lo);
    _mm256_store_ps(dst + c + 8, hi);
  }
}

// One lane group's scores of a block, from its queries qg ([D, 8]) and the block's widened K rows kf, 8 positions at a
// time (8 accumulators, with the query vector and the broadcasts within AVX2's 16 registers): scores[8 r + g] is
// query head g's score at position r ([kKvBlock, 8]); blocks past the live rows are skipped.
// Given next_k (this head's K rows of the next block), it prefetches them, one row per iteration of the first 8 for
// each 8 positions.
template <int kD, typename T>
inline void block_scores_avx2(const float* qg, const float* kf, int64_t D_any, int64_t live_rows,
                              const T* const* next_k, float* scores) {
  const int64_t D = kD > 0 ? kD : D_any;
  for (int64_t r0 = 0; r0 < live_rows; r0 += 8) {
    __m256 s[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) s[r] = _mm256_setzero_ps();
    const float* kb = kf + r0 * D;
    for (int64_t f = 0; f < D; ++f) {
      if (next_k != nullptr && f < 8) prefetch_kv_row(next_k[r0 + f], D * static_cast<int64_t>(sizeof(T)));
      const __m256 qv = _mm256_load_ps(qg + 8 * f);
#pragma GCC unroll 8
      for (int r = 0; r < 8; ++r) s[r] = _mm256_fmadd_ps(qv, _mm256_broadcast_ss(kb + r * D + f), s[r]);
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) _mm256_store_ps(scores + 8 * (r0 + r), s[r]);
  }
}

// The AVX-512 run's algorithm on 8 lanes: a lane group is 8 query heads in the lanes of one vector per position, the
// K rows are widened in split order (each element broadcast on its own, so any order serves), and P.V takes one chunk
// of 16 output dims of up to 4 query heads per pass over the block's V rows (8 accumulators: with 16 registers, all 8
// x 32 of the AVX-512 pass would not fit). Returns false for head shapes it does not take (D not a multiple of 16 or
// D > 256); the caller then runs the scalar loop.
template <int kG, int kD, typename T>
bool attention_run_avx2(const T* q, const KvRows<T>& kv, const float* sinks, int64_t n, int64_t kvh0, int64_t heads,
                        int64_t G_any, float sm_scale, Scratch& scratch, T* out, float* partial) {
  const int64_t G = kG > 0 ? kG : G_any;
  const int64_t D = kD > 0 ? kD : kv.D;
  if (!vector_path_takes(D) || n < 1) return false;
  const int64_t C2 = D / 16;                      // chunks of 16 elements, each two vectors in split order
  const int64_t NG = (G + kGroup - 1) / kGroup;  // lane groups per KV head
  const int64_t HG = heads * G;
  const RunBuffers buf(scratch, heads, NG, G, D, 8);
  float *qg = buf.qg, *acc = buf.acc, *kf = buf.kf, *p = buf.p, *state = buf.state, *denom = buf.denom;
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t gr = 0; gr < NG; ++gr) {
      const int64_t g0 = h * G + gr * kGroup, gn = std::min(kGroup, G - gr * kGroup);
      group_queries<1>(q + g0 * D, gn, D, sm_scale, widen_row_avx2<T>, kf,  // kf: free until the blocks
                       qg + (h * NG + gr) * kGroup * D);
      float* st = state + (h * NG + gr) * 16;
      for (int64_t g = 0; g < kGroup; ++g) {
        if (sinks == nullptr) {  // a later chunk of a long sequence: no sink, nothing seen yet
          st[g] = -INFINITY;
          st[8 + g] = 0.0f;
        } else {
          st[g] = g < gn ? sinks[g0 + g] : 0.0f;  // the sink starts the max; a -inf sink also works
          st[8 + g] = 1.0f;                       // the sink's exp(sink - max)
        }
      }
    }
  }
  const __m256 one = _mm256_set1_ps(1.0f);
  walk_blocks(kv, n, kvh0, heads, NG, D, widen_row_avx2<T>, kf,
              [&](int64_t h, int64_t gr, const BlockRows<T>& rows, const T* const* next_k, const T* const* next_v,
                  int64_t live_rows) {
    const int64_t g0 = h * G + gr * kGroup, gn = std::min(kGroup, G - gr * kGroup);
    float* st = state + (h * NG + gr) * 16;
    block_scores_avx2<kD, T>(qg + (h * NG + gr) * kGroup * D, kf, D, live_rows, gr == 0 ? next_k : nullptr, p);
    // Online softmax on the group's vector of query heads.
    __m256 block_max = _mm256_set1_ps(-INFINITY);
    for (int64_t r = 0; r < live_rows; ++r) block_max = _mm256_max_ps(block_max, _mm256_load_ps(p + 8 * r));
    const __m256 old_max = _mm256_load_ps(st);
    const __m256 new_max = _mm256_max_ps(old_max, block_max);
    __m256 den = _mm256_load_ps(st + 8);
    const __m256 moved = _mm256_cmp_ps(new_max, old_max, _CMP_GT_OQ);
    if (_mm256_movemask_ps(moved)) {
      const __m256 alpha = _mm256_blendv_ps(one, exp8(_mm256_sub_ps(old_max, new_max)), moved);
      alignas(32) float alphas[8];
      _mm256_store_ps(alphas, alpha);
      for (int64_t g = 0; g < gn; ++g)
        if (alphas[g] != 1.0f) rescale_row(acc, g0 + g, D, alphas[g]);
      den = _mm256_mul_ps(den, alpha);
    }
    _mm256_store_ps(st, new_max);
    for (int64_t r = 0; r < live_rows; ++r) {
      const __m256 e = exp8(_mm256_sub_ps(_mm256_load_ps(p + 8 * r), new_max));
      _mm256_store_ps(p + 8 * r, e);
      den = _mm256_add_ps(den, e);
    }
    _mm256_store_ps(st + 8, den);
    // P.V: one chunk of 16 output dims (its two split-order vectors) of up to 4 query heads per pass.
    for (int64_t c = 0; c < C2; ++c) {
      for (int64_t q0 = 0; q0 < gn; q0 += 4) {
        const int64_t qn = std::min<int64_t>(4, gn - q0);
        float* acc_q = acc + (g0 + q0) * D + 16 * c;
        __m256 a[4][2];
        for (int g = 0; g < 4; ++g) {
          const float* ag = acc_q + std::min<int64_t>(g, qn - 1) * D;
          a[g][0] = _mm256_load_ps(ag);
          a[g][1] = _mm256_load_ps(ag + 8);
        }
        for (int64_t r = 0; r < live_rows; ++r) {
          if (gr == 0 && c == 0 && q0 == 0) prefetch_kv_row(next_v[r], D * static_cast<int64_t>(sizeof(T)));
          __m256 lo, hi;
          split16(rows.v[r] + h * D + 16 * c, lo, hi);
#pragma GCC unroll 4
          for (int g = 0; g < 4; ++g) {
            if (g < qn) {
              const __m256 pv = _mm256_broadcast_ss(p + 8 * r + q0 + g);
              a[g][0] = _mm256_fmadd_ps(pv, lo, a[g][0]);
              a[g][1] = _mm256_fmadd_ps(pv, hi, a[g][1]);
            }
          }
        }
#pragma GCC unroll 4
        for (int g = 0; g < 4; ++g) {  // a fixed count: a loop to qn kept the accumulators in memory
          if (g < qn) {
            _mm256_store_ps(acc_q + g * D, a[g][0]);
            _mm256_store_ps(acc_q + g * D + 8, a[g][1]);
          }
        }
      }
    }
              });
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t gr = 0; gr < NG; ++gr) {
      const float* st = state + (h * NG + gr) * 16;
      const int64_t g0 = h * G + gr * kGroup, gn = std::min(kGroup, G - gr * kGroup);
      for (int64_t g = 0; g < gn; ++g) {
        denom[g0 + g] = st[8 + g];
        if (partial != nullptr) partial[(g0 + g) * (D + 2) + D] = st[g];  // the running max
      }
    }
  if (partial != nullptr) {
    write_partial(acc, denom, HG, D, partial);
    return true;
  }
  write_outputs<8, T>(acc, denom, HG, D, out);
  return true;
}
#endif

// Positions per chunk of a long sequence on the vector paths. A sequence longer than this is cut into chunks at fixed
// positions, and each (chunk, KV head) is a work item of its own; merge_chunks then adds up the chunks' states in
// chunk order. So threads beyond the KV heads' count get work, each thread streams whole positions (all heads' rows
// of a chunk) rather than a share of each, and the result still depends on the length only, not on the thread count.
#ifdef GPTOSS_KV_CHUNK
constexpr int64_t kChunk = GPTOSS_KV_CHUNK;
#else
constexpr int64_t kChunk = 2048;
#endif
static_assert(kChunk % kKvBlock == 0, "chunks of whole blocks");

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
  // Per sequence: its oldest visible position, how many it sees, its chunks, its first work item and (when chunked)
  // where its chunks' states start in `partials` ([chunks, Hq, D + 2]).
  std::vector<int64_t> first(B), count(B), chunks(B), item0(B + 1, 0), part0(B, 0);
  int64_t part_floats = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t length = lengths[b];
    const int64_t held = ring ? std::min(length, S) : length;
    first[b] = length - held;
    if (window > 0) first[b] = std::max(first[b], length - window);  // q at length-1 sees (q - window, q]
    count[b] = length - first[b];
    chunks[b] = vector_path_takes(D) && count[b] > kChunk ? (count[b] + kChunk - 1) / kChunk : 1;
    item0[b + 1] = item0[b] + chunks[b] * Hkv;
    if (chunks[b] > 1) {
      part0[b] = part_floats;
      part_floats += chunks[b] * Hq * (D + 2);
    }
  }
  std::vector<float> partials(static_cast<size_t>(part_floats));
  at::parallel_for(0, item0[B], 1, [&](int64_t i0, int64_t i1) {
    Scratch scratch;
    std::vector<float> qf(static_cast<size_t>(G * D));
    std::vector<float> acc(static_cast<size_t>(G * D));
    std::vector<float> scores;
    for (int64_t item = i0; item < i1;) {
      const int64_t b = std::upper_bound(item0.begin(), item0.end(), item) - item0.begin() - 1;
      const int64_t c = (item - item0[b]) / Hkv, kvh = (item - item0[b]) % Hkv;
      const bool chunked = chunks[b] > 1;
      const int64_t start = c * kChunk;  // this item's positions: chunk c, or the whole sequence (c = 0)
      const int64_t n = chunked ? std::min(kChunk, count[b] - start) : count[b];
      const KvRows<T> kv{kp, vp, slots[b], first[b] + start, S, Hkv, D, ring};
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
      // A chunk's state goes to `partials`; only the first chunk counts the sinks.
      float* partial = chunked ? partials.data() + part0[b] + (c * Hq + kvh * G) * (D + 2) : nullptr;
      const float* run_sinks = c == 0 ? sinks + kvh * G : nullptr;
      if (run(qp + head0 * D, kv, run_sinks, n, kvh, heads, G, sm_scale, scratch, op + head0 * D, partial)) {
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
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#if defined(__AVX512F__)
  constexpr int kLanes = 16;  // the split order's vector width (write_outputs)
#else
  constexpr int kLanes = 8;
#endif
  std::vector<float> merged(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b) {
    if (chunks[b] == 1) continue;
    for (int64_t h = 0; h < Hq; ++h)
      merge_chunks<kLanes, T>(partials.data() + part0[b] + h * (D + 2), chunks[b], Hq * (D + 2), D, merged.data(),
                              op + (b * Hq + h) * D);
  }
#endif
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
