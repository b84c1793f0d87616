// The GEMV of the opt-in 8-bit weights (`--weights q8`): x @ W.T + bias with W = values * scales, where values is
// int8 [N, K] and scales fp32 [N, K/32] (one scale per 32 consecutive weights of a row, the Q8_0 shape of llama.cpp).
// Python wrapper and torch reference: kernels/cpu_q8.py, kernels/q8.py.
//
// Decode is memory-bound: a row is read once per tile of tokens, and an int8 weight is half the bytes of a bf16 one,
// which is the whole point. Every weight is widened in registers (int8 -> int32 -> fp32, times its group's scale,
// shared by the tile's tokens) and meets fp32 activations in FMAs with fp32 accumulation: the activations are not
// quantised (llama.cpp rounds them to int8 too), so the only error against the bf16 weights is the weights' own
// rounding to 8 bits.
//
// Each (row, token) sum has its own accumulators that take the groups in the same order for every tile size, so a
// token's result does not depend on how many tokens share the call (batched decode = lone decode, bit for bit).
#include "vec8.h"  // hsum8 (and common.h)

namespace GPTOSS_OP_NAMESPACE {
namespace {

constexpr int64_t kQ8Group = 32;
constexpr int kQ8MaxTile = 4;
// Token tile: as many tokens (2 to 4) as keep their fp32 activations within ~48 KB. Twice the bf16 GEMV's budget:
// an int8 row is half the bytes, and at 2-4 tokens this kernel is bound by widening the weights, which a wider tile
// shares. Measured at K = 2880 (3 tokens in one tile instead of 2 + 1; AMD EPYC, avx2, interleaved, load ~9):
// qkv 1.12 vs 1.52 ms, unembedding 176 vs 268 ms; 2 and 4 tokens unchanged within the noise.
constexpr int64_t kQ8TileBytes = 48 << 10;
// Prefetch distance along a row; rows are streamed, so this runs ahead of the hardware prefetcher's ramp-up.
constexpr int64_t kQ8PrefetchBytes = 2048;

int q8_tile(int64_t K) { return token_tile(K, kQ8TileBytes, kQ8MaxTile); }

#if defined(__AVX512F__)
// One row against TT tokens. q: K int8; d: K/32 scales; xp: [TT][K] fp32, rows xstride apart. A group of 32 is one
// 32-byte load, sign-extended to two 16-lane int32 vectors (vpmovsxbd), converted and scaled; two groups per
// iteration into four accumulators per token (even groups: 0/1, odd groups: 2/3) so the FMA chains overlap.
template <int TT>
inline void q8_row_dot(const int8_t* q, const float* d, int64_t G, const float* xp, int64_t xstride, float* res) {
  __m512 acc[TT][4];
  for (int t = 0; t < TT; ++t)
    for (int a = 0; a < 4; ++a) acc[t][a] = _mm512_setzero_ps();
  auto group = [&](int64_t g, int a0) {
    const int8_t* p = q + kQ8Group * g;
    const __m512 scale = _mm512_set1_ps(d[g]);
    const __m512 w0 = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)))), scale);
    const __m512 w1 = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)))), scale);
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + kQ8Group * g;
      acc[t][a0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xg), acc[t][a0]);
      acc[t][a0 + 1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xg + 16), acc[t][a0 + 1]);
    }
  };
  int64_t g = 0;
  for (; g + 2 <= G; g += 2) {
    _mm_prefetch(reinterpret_cast<const char*>(q + kQ8Group * g) + kQ8PrefetchBytes, _MM_HINT_T0);
    group(g, 0);
    group(g + 1, 2);
  }
  if (g < G) group(g, 0);
  __m512 sums[TT];
  for (int t = 0; t < TT; ++t)
    sums[t] = _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
  reduce_lanes<TT>(sums, res);  // a fixed lane pairing per vector (common.h): the same bits alone or in a tile
}

#elif defined(__AVX2__) && defined(__FMA__)
// Written for 16 registers of 8 lanes: a group is four 8-byte pieces, each sign-extended straight from memory
// (vpmovsxbd ymm, m64), converted and scaled; pieces 0/2 feed a token's first accumulator and 1/3 its second, which
// leaves 8 accumulators, 4 weight vectors and the scale in registers at TT = 4.
template <int TT>
inline void q8_row_dot(const int8_t* q, const float* d, int64_t G, const float* xp, int64_t xstride, float* res) {
  __m256 acc[TT][2];
  for (int t = 0; t < TT; ++t) {
    acc[t][0] = _mm256_setzero_ps();
    acc[t][1] = _mm256_setzero_ps();
  }
  for (int64_t g = 0; g < G; ++g) {
    const int8_t* p = q + kQ8Group * g;
    _mm_prefetch(reinterpret_cast<const char*>(p) + kQ8PrefetchBytes, _MM_HINT_T0);
    const __m256 scale = _mm256_set1_ps(d[g]);
    __m256 w[4];
    for (int i = 0; i < 4; ++i) {
      const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * i));
      w[i] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(bytes)), scale);
    }
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + kQ8Group * g;
      for (int i = 0; i < 4; ++i) acc[t][i & 1] = _mm256_fmadd_ps(w[i], _mm256_loadu_ps(xg + 8 * i), acc[t][i & 1]);
    }
  }
  for (int t = 0; t < TT; ++t) res[t] = hsum8(_mm256_add_ps(acc[t][0], acc[t][1]));
}

#else
// Portable: each group's scaled products summed in order, then added to the token's sum.
template <int TT>
inline void q8_row_dot(const int8_t* q, const float* d, int64_t G, const float* xp, int64_t xstride, float* res) {
  float acc[TT] = {};
  for (int64_t g = 0; g < G; ++g) {
    const int8_t* p = q + kQ8Group * g;
    for (int t = 0; t < TT; ++t) {
      const float* xg = xp + t * xstride + kQ8Group * g;
      float part = 0.0f;
      for (int j = 0; j < kQ8Group; ++j) part += (static_cast<float>(p[j]) * d[g]) * xg[j];
      acc[t] += part;
    }
  }
  for (int t = 0; t < TT; ++t) res[t] = acc[t];
}
#endif

// body(n0, n1) for each chunk of `chunk` rows of N, the chunks handed out from a shared counter to at::parallel_for's
// threads: on a busy desktop (or a 2-core CI box) one thread is often descheduled, and with a static split the whole
// call would wait a scheduler tick for it, while here the running threads take over its share.
template <typename Body>
void for_row_chunks(int64_t N, int64_t chunk, const Body& body) {
  const int64_t n_chunks = (N + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), n_chunks), 1, [&](int64_t, int64_t) {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < n_chunks;) {
      body(c * chunk, std::min(N, (c + 1) * chunk));
    }
  });
}

void q8_dispatch_row(int tt, const int8_t* q, const float* d, int64_t G, const float* xp, int64_t xstride,
                     float* res) {
  switch (tt) {
    case 4: q8_row_dot<4>(q, d, G, xp, xstride, res); break;
    case 3: q8_row_dot<3>(q, d, G, xp, xstride, res); break;
    case 2: q8_row_dot<2>(q, d, G, xp, xstride, res); break;
    default: q8_row_dot<1>(q, d, G, xp, xstride, res); break;
  }
}

at::Tensor q8_linear(const at::Tensor& x, const at::Tensor& values, const at::Tensor& scales,
                     const std::optional<at::Tensor>& bias, bool fp32_out) {
  // The Python wrapper gives friendlier errors; these checks keep a direct torch.ops call from reading out of bounds.
  TORCH_CHECK(x.device().is_cpu() && values.device().is_cpu() && scales.device().is_cpu(), "CPU tensors expected");
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), "x must be a contiguous [T, K] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  TORCH_CHECK(values.scalar_type() == at::kChar && values.dim() == 2 && values.is_contiguous(),
              "values must be a contiguous int8 [N, K] tensor");
  const int64_t N = values.size(0);
  const int64_t K = values.size(1);
  const int64_t T = x.size(0);
  TORCH_CHECK(K % kQ8Group == 0, "K must be a multiple of 32, got ", K);
  const int64_t G = K / kQ8Group;
  TORCH_CHECK(scales.scalar_type() == at::kFloat && scales.dim() == 2 && scales.size(0) == N && scales.size(1) == G &&
                  scales.is_contiguous(),
              "scales must be a contiguous float32 [N, K/32] tensor");
  TORCH_CHECK(x.size(1) == K, "x has ", x.size(1), " columns, the weight has ", K);
  const BiasView bias_view = view_bias(bias, N);

  at::Tensor out = at::empty({T, N}, fp32_out ? x.options().dtype(at::kFloat) : x.options());
  if (T == 0 || N == 0) return out;

  // fp32 activations in their natural order (a copy of [T, K]: small next to the weights).
  const at::Tensor xf = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  const float* xpp = xf.data_ptr<float>();
  const int8_t* qv = values.data_ptr<int8_t>();
  const float* sc = scales.data_ptr<float>();
  const bool out_f32 = out.scalar_type() == at::kFloat;
  float* out_f = out_f32 ? out.data_ptr<float>() : nullptr;
  c10::BFloat16* out_bf = out_f32 ? nullptr : out.data_ptr<c10::BFloat16>();
  const int tile = q8_tile(K);

  // Each (row, token) result: + bias, then stored as fp32 or rounded once to bf16.
  auto store = [&](int64_t t, int64_t n, float sum) {
    const float b = bias_view.f32 ? bias_view.f32[n] : (bias_view.bf16 ? static_cast<float>(bias_view.bf16[n]) : 0.0f);
    if (out_f32) {
      out_f[t * N + n] = sum + b;
    } else {
      out_bf[t * N + n] = c10::BFloat16(sum + b);  // round-to-nearest-even, like Tensor.to(bfloat16)
    }
  };
  // ~64 KB of weights per chunk. Token tiles outside, rows inside: a later tile re-reads the chunk's rows from L2
  // while its activations stay in L1.
  for_row_chunks(N, std::max<int64_t>(1, (int64_t{64} << 10) / K), [&](int64_t n0, int64_t n1) {
    float res[kQ8MaxTile];
    for (int64_t t0 = 0; t0 < T; t0 += tile) {
      const int tt = static_cast<int>(std::min<int64_t>(T - t0, tile));
      for (int64_t n = n0; n < n1; ++n) {
        q8_dispatch_row(tt, qv + n * K, sc + n * G, G, xpp + t0 * K, K, res);
        for (int i = 0; i < tt; ++i) store(t0 + i, n, res[i]);
      }
    }
  });
  return out;
}

// ---- load-time quantisation ----
// One pass over a weight's rows: per group of 32, scale = absmax / 127 and value = round-half-even(w / scale) clamped
// to +-127, exactly kernels/q8.py's torch reference (the same IEEE division and rounding, so the same bits at every
// level), which makes a dozen passes over fp32 temporaries and whose many small parallel ops crawl when other work
// takes the cores. An all-zero group keeps scale 0 and values 0.
template <typename T>
void q8_quantize_rows(const T* w, int64_t R, int64_t K, int8_t* values, float* scales) {
  const int64_t G = K / kQ8Group;
  at::parallel_for(0, R, 16, [&](int64_t r0, int64_t r1) {
    float buf[kQ8Group];
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t g = 0; g < G; ++g) {
        const T* src = w + r * K + g * kQ8Group;
        float amax = 0.0f;
        for (int j = 0; j < kQ8Group; ++j) {
          buf[j] = static_cast<float>(src[j]);
          amax = std::max(amax, std::fabs(buf[j]));
        }
        const float scale = amax / 127.0f;
        const float divisor = scale > 0.0f ? scale : 1.0f;
        int8_t* dst = values + r * K + g * kQ8Group;
        for (int j = 0; j < kQ8Group; ++j) {
          dst[j] = static_cast<int8_t>(std::clamp(std::nearbyint(buf[j] / divisor), -127.0f, 127.0f));
        }
        scales[r * G + g] = scale;
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> q8_quantize(const at::Tensor& weight) {
  TORCH_CHECK(weight.device().is_cpu() && weight.dim() == 2 && weight.is_contiguous(),
              "weight must be a contiguous CPU [N, K] tensor");
  TORCH_CHECK(weight.scalar_type() == at::kFloat || weight.scalar_type() == at::kBFloat16,
              "weight must be float32 or bfloat16");
  const int64_t R = weight.size(0);
  const int64_t K = weight.size(1);
  TORCH_CHECK(K % kQ8Group == 0, "K must be a multiple of 32, got ", K);
  at::Tensor values = at::empty({R, K}, weight.options().dtype(at::kChar));
  at::Tensor scales = at::empty({R, K / kQ8Group}, weight.options().dtype(at::kFloat));
  if (weight.scalar_type() == at::kFloat) {
    q8_quantize_rows(weight.data_ptr<float>(), R, K, values.data_ptr<int8_t>(), scales.data_ptr<float>());
  } else {
    q8_quantize_rows(weight.data_ptr<c10::BFloat16>(), R, K, values.data_ptr<int8_t>(), scales.data_ptr<float>());
  }
  return {values, scales};
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("q8_quantize(Tensor weight) -> (Tensor, Tensor)", &GPTOSS_OP_NAMESPACE::q8_quantize);
  m.def("q8_linear(Tensor x, Tensor values, Tensor scales, Tensor? bias, bool fp32_out=False) -> Tensor",
        &GPTOSS_OP_NAMESPACE::q8_linear);
}
