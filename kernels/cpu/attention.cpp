// Decode attention straight from the KV cache store (Python wrapper: kernels/cpu_mxfp4.py, attention_decode).
//
// One query per sequence against its cached keys, like attention_decode_ref, without the reference's per-sequence
// gathers and fp32 copies of the whole visible cache (~15 torch ops per layer and sequence). One work item is one
// (sequence, KV head): each K/V row is read once and serves the G query heads that share it. Scores and softmax are in
// fp32, the sink joins the denominator only; each sequence's result is independent of the batch.
#include "common.h"
#include "vec8.h"

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

// Rows of one KV head are Hkv * D elements apart (1 KiB on the 20b): prefetched this many positions ahead, since the
// hardware prefetcher does not keep enough of those strided lines in flight. 16 rather than 8: 20b decode at 8,192
// cached tokens 7.12 -> 7.39 tok/s at avx512bf16 (32: 7.34; Xeon, Emerald Rapids class); the same within noise at
// avx2.
#ifdef GPTOSS_KV_ROWS_AHEAD
constexpr int64_t kRowsAhead = GPTOSS_KV_ROWS_AHEAD;
#else
constexpr int64_t kRowsAhead = 16;
#endif

// How many positions the pre-pass over a thread's KV heads prefetches (attention_decode, below).
#ifdef GPTOSS_KV_PREPASS
constexpr int64_t kPrepassRows = GPTOSS_KV_PREPASS;
#else
constexpr int64_t kPrepassRows = 1024;
#endif

// Prefetches `bytes` of the cache from `row` on (one KV head's row, or a position's block of heads).
inline void prefetch_kv_row(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (int64_t b0 = 0; b0 < bytes; b0 += 64) __builtin_prefetch(p + b0, 0, 3);
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
  const int64_t row_bytes = D * static_cast<int64_t>(sizeof(T));
  // Scores: one K row against the G query heads, lane sums reduced four heads at a time.
  for (int64_t j = 0; j < n; ++j) {
    if (j + kRowsAhead < n) prefetch_kv_row(row(kp, j + kRowsAhead), row_bytes);
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
      if (j + kRowsAhead < n) prefetch_kv_row(row(vp, j + kRowsAhead), row_bytes);
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

#elif defined(__AVX2__) && defined(__FMA__)
inline __m256 load8_f32(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8_f32(const c10::BFloat16* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// The 8 lane sums of v[0..7] as one vector (lane i = sum of v[i]), each with the same pairing whatever the other
// vectors hold, so a head's score does not depend on how many heads share the reduction.
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

// The AVX-512 item's algorithm on 8 lanes: a K row widened once into kf and shared by the G heads (8 heads' lane
// sums reduced together), a vectorised softmax, and P.V for 16 output dims of up to 4 heads per pass over the V rows
// (8 accumulators: with 16 registers, all G x 32 of the AVX-512 pass would not fit). Returns false for head shapes it
// does not take (D not a multiple of 8, D > 256 or G > 16); the caller then runs the scalar loop.
// dots[g] = the 8 lane products of query head g (qf, [G][8 C]) with one K row, each sum in the same order: kC is C
// at compile time (the row's vectors stay in registers), 0 for any C (the row is widened once into kf).
template <int kC, typename T>
inline void head_dots(const float* qf, const T* krow, int64_t G, int64_t C, float* kf, __m256* dots) {
  if constexpr (kC > 0) {
    __m256 kv[kC];
    for (int c = 0; c < kC; ++c) kv[c] = load8_f32(krow + 8 * c);
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = qf + g * 8 * kC;
      __m256 acc = _mm256_mul_ps(_mm256_load_ps(qg), kv[0]);
      for (int c = 1; c < kC; ++c) acc = _mm256_fmadd_ps(_mm256_load_ps(qg + 8 * c), kv[c], acc);
      dots[g] = acc;
    }
  } else {
    for (int64_t c = 0; c < C; ++c) _mm256_store_ps(kf + 8 * c, load8_f32(krow + 8 * c));
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = qf + g * 8 * C;
      __m256 acc = _mm256_mul_ps(_mm256_load_ps(qg), _mm256_load_ps(kf));
      for (int64_t c = 1; c < C; ++c) {
        acc = _mm256_fmadd_ps(_mm256_load_ps(qg + 8 * c), _mm256_load_ps(kf + 8 * c), acc);
      }
      dots[g] = acc;
    }
  }
}

template <typename T>
bool attention_item_avx2(const T* q, const T* kp, const T* vp, const float* sinks, int64_t slot, int64_t first,
                         int64_t n, int64_t S, int64_t Hkv, int64_t kvh, int64_t G, int64_t D, bool ring,
                         float sm_scale, std::vector<float>& scores, T* out) {
  if (D % 8 != 0 || D > 256 || G > 16 || n < 1) return false;
  const int64_t C = D / 8;
  alignas(32) float qf[16 * 256];
  alignas(32) float kf[256];
  for (int64_t i = 0; i < G * D; ++i) qf[i] = static_cast<float>(q[i]);
  const int64_t stride_n = ((n + 7) / 8) * 8;  // each head's scores padded to whole vectors
  scores.assign(static_cast<size_t>(G * stride_n), 0.0f);
  auto row = [&](const T* base, int64_t j) {
    const int64_t pos = first + j;
    return base + ((slot * S + (ring ? pos % S : pos)) * Hkv + kvh) * D;
  };
  const int64_t row_bytes = D * static_cast<int64_t>(sizeof(T));
  auto prefetch_row = [&](const T* base, int64_t j) { prefetch_kv_row(row(base, j), row_bytes); };
  for (int64_t j = 0; j < n; ++j) {
    if (j + kRowsAhead < n) prefetch_row(kp, j + kRowsAhead);
    const T* krow = row(kp, j);
    __m256 dots[16];
    switch (C) {  // the usual head sizes (64, gpt-oss; 32) keep the K row in registers
      case 8: head_dots<8>(qf, krow, G, C, kf, dots); break;
      case 4: head_dots<4>(qf, krow, G, C, kf, dots); break;
      default: head_dots<0>(qf, krow, G, C, kf, dots); break;
    }
    for (int64_t g = G; g < ((G + 7) / 8) * 8; ++g) dots[g] = _mm256_setzero_ps();
    alignas(32) float dot[16];
    for (int64_t g0 = 0; g0 < G; g0 += 8) _mm256_store_ps(dot + g0, reduce8(dots + g0));
    for (int64_t g = 0; g < G; ++g) scores[g * stride_n + j] = dot[g] * sm_scale;
  }
  // Softmax per head; padding lanes are left out of the max and the sum and end up 0.
  alignas(32) int32_t lane_index[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  const __m256i lanes = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_index));
  const __m256 tail = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n % 8)), lanes));
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  float denom[16];
  for (int64_t g = 0; g < G; ++g) {
    float* sg = scores.data() + g * stride_n;
    __m256 m = _mm256_set1_ps(sinks[g]);
    for (int64_t j = 0; j < stride_n; j += 8) {
      __m256 v = _mm256_loadu_ps(sg + j);
      if (j + 8 > n) v = _mm256_blendv_ps(neg_inf, v, tail);
      m = _mm256_max_ps(m, v);
    }
    const float mx = hmax256(m);
    const __m256 mv = _mm256_set1_ps(mx);
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < stride_n; j += 8) {
      __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(sg + j), mv));
      if (j + 8 > n) e = _mm256_and_ps(e, tail);
      _mm256_storeu_ps(sg + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    denom[g] = hsum8(sum) + _mm256_cvtss_f32(exp8(_mm256_set1_ps(sinks[g] - mx)));
  }
  // P.V: 16 output dims of up to 4 heads per pass.
  for (int64_t c0 = 0; c0 < C; c0 += 2) {
    const bool two = c0 + 1 < C;
    for (int64_t g0 = 0; g0 < G; g0 += 4) {
      const int64_t gn = std::min<int64_t>(4, G - g0);
      __m256 acc[4][2];
      for (int g = 0; g < 4; ++g) acc[g][0] = acc[g][1] = _mm256_setzero_ps();
      const float* sg = scores.data() + g0 * stride_n;
      for (int64_t j = 0; j < n; ++j) {
        if (j + kRowsAhead < n) prefetch_row(vp, j + kRowsAhead);
        const T* vrow = row(vp, j);
        const __m256 v0 = load8_f32(vrow + 8 * c0);
        const __m256 v1 = two ? load8_f32(vrow + 8 * c0 + 8) : _mm256_setzero_ps();
#pragma GCC unroll 4
        for (int g = 0; g < 4; ++g) {
          if (g < gn) {
            const __m256 pv = _mm256_set1_ps(sg[g * stride_n + j]);
            acc[g][0] = _mm256_fmadd_ps(pv, v0, acc[g][0]);
            acc[g][1] = _mm256_fmadd_ps(pv, v1, acc[g][1]);
          }
        }
      }
      for (int64_t g = 0; g < gn; ++g) {
        const __m256 inv = _mm256_set1_ps(1.0f / denom[g0 + g]);
        alignas(32) float o[16];
        _mm256_store_ps(o, _mm256_mul_ps(acc[g][0], inv));
        _mm256_store_ps(o + 8, _mm256_mul_ps(acc[g][1], inv));
        for (int i = 0; i < (two ? 16 : 8); ++i) out[(g0 + g) * D + 8 * c0 + i] = T(o[i]);
      }
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
#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
      if (item == i0 || kvh == 0) {
        // This thread's KV heads of sequence b, position by position: a contiguous block per position (the store is
        // [.., pos, kvh, D]), prefetched before the per-head loops below read it head by head, 1 KB-strided. Right
        // after a layer's weight streams the cache rows are cold; on the 20b at 512 positions a full layer's call took
        // ~290 us cold against ~105 us warm, and ~160 us with this pass (T0 beat T1/T2 hints: ~160 vs ~210 us).
        // Only the first kPrepassRows positions: the per-head loops prefetch kRowsAhead rows ahead, and a long
        // context's whole cache (32 MB for 4 heads at 32k) would only push itself out of the caches again.
        const int64_t heads = std::min(Hkv - kvh, i1 - item);
        const int64_t block = heads * D * static_cast<int64_t>(sizeof(T));
        for (int64_t j = 0; j < std::min(n, kPrepassRows); ++j) {
          const int64_t pos = first + j;
          const int64_t offset = ((slot * S + (ring ? pos % S : pos)) * Hkv + kvh) * D;
          prefetch_kv_row(kp + offset, block);
          prefetch_kv_row(vp + offset, block);
        }
      }
#if defined(__AVX512F__)
      if (attention_item_avx512<T>(qp + (b * Hq + kvh * G) * D, kp, vp, sinks + kvh * G, slot, first, n, S, Hkv, kvh,
                                   G, D, ring, sm_scale, scores, op + (b * Hq + kvh * G) * D))
        continue;
#else
      if (attention_item_avx2<T>(qp + (b * Hq + kvh * G) * D, kp, vp, sinks + kvh * G, slot, first, n, S, Hkv, kvh,
                                 G, D, ring, sm_scale, scores, op + (b * Hq + kvh * G) * D))
        continue;
#endif
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

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("attention_decode(Tensor q, Tensor k_store, Tensor v_store, Tensor sinks, Tensor slots, Tensor lengths, "
        "int window, bool ring, float sm_scale) -> Tensor",
        &GPTOSS_OP_NAMESPACE::attention_decode);
}
