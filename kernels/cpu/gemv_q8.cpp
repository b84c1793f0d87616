// The GEMV of the opt-in 8-bit weights (`--weights q8`): x @ W.T + bias with W = values * scales, where values is
// int8 [N, K] and scales bf16 [N, K/32] (one scale per 32 consecutive weights of a row, the Q8_0 shape of llama.cpp;
// kernels/q8.py says why bf16).
// Python wrapper and torch reference: kernels/cpu_q8.py, kernels/q8.py.
//
// Decode is memory-bound: a row is read once per tile of tokens, and an int8 weight is half the bytes of a bf16 one,
// which is the whole point. Widening every weight to fp32 (sign-extend, convert, scale: 4 instructions per 8 or 16
// weights) left the kernel bound by those conversions below the memory's rate, so the products are integer ones:
// each token's activations are rounded once per call to int16 with one fp32 scale per group of 32 (x ~ xq * xs,
// scale = absmax / 32767), and a group's 32 products int8 x int16 are summed exactly in int32 (`vpmaddwd`: two
// products per lane) before one conversion and one FMA with the product of the two scales. llama.cpp rounds the
// activations to int8; int16 keeps their error at most absmax / 65534 per value, ~256x below the weights' own
// rounding (absmax / 254), so the weights' rounding stays the error that matters.
//
// The vector code is 256 bits wide at every level that has AVX2, AVX-512 included: a 512-bit version (two groups per
// 64-byte block, each group's sums in 8 of the 16 lanes) ran 13-30 % slower on AMD Zen 4, whose 512-bit units are
// two 256-bit halves, at 1, 2 and 4 tokens (L2-resident rows, one core). Cores with full-width 512-bit units were
// not measured.
//
// Each (row, token) sum has its own accumulators that take the groups in the same order for every tile size, and a
// token's int16 rounding depends on that token alone, so a token's result does not depend on how many tokens share
// the call (batched decode = lone decode, bit for bit).
#include <type_traits>

#include "vec8.h"  // hsum8 (and common.h)

namespace GPTOSS_OP_NAMESPACE {
namespace {

constexpr int64_t kQ8Group = 32;
constexpr int kQ8MaxTile = 4;
// Token tile: as many tokens (2 to 4) as keep their activations within ~48 KB (token_tile counts 4 bytes a value; the
// int16 values take half that). At 2-4 tokens a tile shares each row's load and unpacking.
constexpr int64_t kQ8TileBytes = 48 << 10;

// A block's bf16 scale bits from its fp32 absmax (kernels/q8.py's scale_for): absmax / 127 to the nearest bf16
// (c10::BFloat16 rounds to nearest even, as Tensor.to does), one step up where the largest weight would be 127.5
// steps or more, which happens only where bf16 is subnormal. 0 stays 0 (0 / 0 is NaN, which compares false).
inline uint16_t scale_for(float amax) {
  const uint16_t nearest = c10::BFloat16(amax / 127.0f).x;
  return amax / bf16_bits_to_float(nearest) >= 127.5f ? static_cast<uint16_t>(nearest + 1) : nearest;
}

int q8_tile(int64_t K) { return token_tile(K, kQ8TileBytes, kQ8MaxTile); }

// One call's activations rounded to int16, x ~ values * scale per group of 32: values [T][K] (in order), scales
// [T][K/32].
struct Q8Activations {
  std::vector<int16_t> values;
  std::vector<float> scales;
};

template <typename T>
Q8Activations round_activations(const T* x, int64_t T_, int64_t K) {
  const int64_t G = K / kQ8Group;
  Q8Activations a;
  a.values.resize(static_cast<size_t>(T_ * K));
  a.scales.resize(static_cast<size_t>(T_ * G));
  for (int64_t t = 0; t < T_; ++t) {
    for (int64_t g = 0; g < G; ++g) {
      a.scales[static_cast<size_t>(t * G + g)] =
          round_group_to_int16(x + t * K + g * kQ8Group, a.values.data() + t * K + g * kQ8Group);
    }
  }
  return a;
}

#if defined(__AVX2__) && defined(__FMA__)
// One row against TT tokens. q: K int8; d: K/32 scales (bf16 bits); xq/xs: the tile's first token's activations,
// rows xstride and sstride apart. Per group of 32 weights: two 16-byte halves sign-extended to words (`vpmovsxbw`),
// and per token two `vpmaddwd` + one add (8 exact int32 sums), one conversion, the scale d_g * xs_g and one FMA.
// Groups alternate between a token's two accumulators so the FMA chains overlap; the slot is a compile-time constant
// (an accumulator picked by a run-time index, b & 1, lived on the stack and cost ~15 %). At TT = 4: 8 accumulators,
// the two weight vectors and the row scale in registers.
template <int TT>
inline void q8_row_dot(const int8_t* q, const uint16_t* d, int64_t K, const int16_t* xq, int64_t xstride,
                       const float* xs, int64_t sstride, float* res) {
  __m256 acc[TT][2];
  for (int t = 0; t < TT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  auto group = [&](int64_t g, auto slot) {
    constexpr int a = decltype(slot)::value;
    const int8_t* p = q + kQ8Group * g;
    prefetch_ahead(p, kStreamPrefetchBytes);  // rows are streamed: run ahead of the hardware prefetcher
    const __m256i lo = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m256i hi = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16)));
    const __m256 dw = _mm256_set1_ps(bf16_bits_to_float(d[g]));
    for (int t = 0; t < TT; ++t) {
      const int16_t* xg = xq + t * xstride + kQ8Group * g;
      const __m256i sums =
          _mm256_add_epi32(_mm256_madd_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg))),
                           _mm256_madd_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xg + 16))));
      const __m256 scale = _mm256_mul_ps(dw, _mm256_broadcast_ss(xs + t * sstride + g));
      acc[t][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[t][a]);
    }
  };
  const int64_t G = K / kQ8Group;
  int64_t g = 0;
  for (; g + 2 <= G; g += 2) {
    group(g, std::integral_constant<int, 0>{});
    group(g + 1, std::integral_constant<int, 1>{});
  }
  if (g < G) group(g, std::integral_constant<int, 0>{});
  for (int t = 0; t < TT; ++t) res[t] = hsum8(_mm256_add_ps(acc[t][0], acc[t][1]));
}

#else
// Portable: each group's 32 products summed exactly in int32, then scaled and added to the token's sum.
template <int TT>
inline void q8_row_dot(const int8_t* q, const uint16_t* d, int64_t K, const int16_t* xq, int64_t xstride,
                       const float* xs, int64_t sstride, float* res) {
  float acc[TT] = {};
  const int64_t G = K / kQ8Group;
  for (int64_t g = 0; g < G; ++g) {
    const int8_t* p = q + kQ8Group * g;
    for (int t = 0; t < TT; ++t) {
      const int16_t* xg = xq + t * xstride + kQ8Group * g;
      int32_t sum = 0;
      for (int j = 0; j < kQ8Group; ++j) sum += static_cast<int32_t>(p[j]) * xg[j];
      acc[t] += static_cast<float>(sum) * (bf16_bits_to_float(d[g]) * xs[t * sstride + g]);
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

void q8_dispatch_row(int tt, const int8_t* q, const uint16_t* d, int64_t K, const int16_t* xq, int64_t xstride,
                     const float* xs, int64_t sstride, float* res) {
  switch (tt) {
    case 4: q8_row_dot<4>(q, d, K, xq, xstride, xs, sstride, res); break;
    case 3: q8_row_dot<3>(q, d, K, xq, xstride, xs, sstride, res); break;
    case 2: q8_row_dot<2>(q, d, K, xq, xstride, xs, sstride, res); break;
    default: q8_row_dot<1>(q, d, K, xq, xstride, xs, sstride, res); break;
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
  TORCH_CHECK(scales.scalar_type() == at::kBFloat16 && scales.dim() == 2 && scales.size(0) == N &&
                  scales.size(1) == G && scales.is_contiguous(),
              "scales must be a contiguous bfloat16 [N, K/32] tensor");
  TORCH_CHECK(x.size(1) == K, "x has ", x.size(1), " columns, the weight has ", K);
  const BiasView bias_view = view_bias(bias, N);

  at::Tensor out = at::empty({T, N}, fp32_out ? x.options().dtype(at::kFloat) : x.options());
  if (T == 0 || N == 0) return out;

  // The activations rounded to int16 (a [T, K] copy: small next to the weights).
  const Q8Activations act = x.scalar_type() == at::kFloat ? round_activations(x.data_ptr<float>(), T, K)
                                                          : round_activations(x.data_ptr<c10::BFloat16>(), T, K);
  const int8_t* qv = values.data_ptr<int8_t>();
  const uint16_t* sc = reinterpret_cast<const uint16_t*>(scales.data_ptr<c10::BFloat16>());
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
  // ~256 KB of weights per chunk: each chunk a thread takes restarts its stream, and 64 KB chunks cost ~10 % of the
  // read rate (23.5 vs 26 GB/s streaming the unembedding on 2 threads, AMD EPYC Zen 4). Token tiles outside, rows
  // inside: a later tile re-reads the chunk's rows from L2 while its activations stay in L1.
  for_row_chunks(N, std::max<int64_t>(1, (int64_t{256} << 10) / K), [&](int64_t n0, int64_t n1) {
    float res[kQ8MaxTile];
    for (int64_t t0 = 0; t0 < T; t0 += tile) {
      const int tt = static_cast<int>(std::min<int64_t>(T - t0, tile));
      for (int64_t n = n0; n < n1; ++n) {
        q8_dispatch_row(tt, qv + n * K, sc + n * G, K, act.values.data() + t0 * K, K, act.scales.data() + t0 * G, G,
                        res);
        for (int i = 0; i < tt; ++i) store(t0 + i, n, res[i]);
      }
    }
  });
  return out;
}

// ---- load-time quantisation ----
// One pass over a weight's rows: per group of 32, scale = scale_for(absmax) and value = round-half-even(w / scale)
// clamped to +-127, exactly kernels/q8.py's torch reference (the same IEEE division and rounding, so the same bits at
// every level), which makes a dozen passes over fp32 temporaries and whose many small parallel ops crawl when other
// work takes the cores. An all-zero group keeps scale 0 and values 0.
template <typename T>
void q8_quantize_rows(const T* w, int64_t R, int64_t K, int8_t* values, uint16_t* scales) {
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
        const uint16_t scale = scale_for(amax);
        const float exact = bf16_bits_to_float(scale);
        const float divisor = exact > 0.0f ? exact : 1.0f;
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
  at::Tensor scales = at::empty({R, K / kQ8Group}, weight.options().dtype(at::kBFloat16));
  uint16_t* sc = reinterpret_cast<uint16_t*>(scales.data_ptr<c10::BFloat16>());
  if (weight.scalar_type() == at::kFloat) {
    q8_quantize_rows(weight.data_ptr<float>(), R, K, values.data_ptr<int8_t>(), sc);
  } else {
    q8_quantize_rows(weight.data_ptr<c10::BFloat16>(), R, K, values.data_ptr<int8_t>(), sc);
  }
  return {values, scales};
}


// ---- dequantisation for prefill ----
// values * scale per group of 32, each product formed in fp32 and rounded once to bf16 (round-to-nearest-even) or kept
// fp32: the bits of kernels/q8.py's dequantize_q8, in one parallel pass instead of its three full-size torch passes
// (~40 ms for a 5120 x 2880 weight on 2 threads, which every prefill projection paid before BLAS multiplied).
template <typename Out>
void q8_dequantize_rows(const int8_t* values, const uint16_t* scales, int64_t R, int64_t K, Out* out) {
  const int64_t G = K / kQ8Group;
  at::parallel_for(0, R, 64, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t g = 0; g < G; ++g) {
        const int8_t* src = values + r * K + g * kQ8Group;
        const float scale = bf16_bits_to_float(scales[r * G + g]);
        Out* dst = out + r * K + g * kQ8Group;
        for (int j = 0; j < kQ8Group; ++j) dst[j] = Out(static_cast<float>(src[j]) * scale);
      }
    }
  });
}

at::Tensor q8_dequantize(const at::Tensor& values, const at::Tensor& scales, bool bf16_out) {
  TORCH_CHECK(values.device().is_cpu() && scales.device().is_cpu(), "CPU tensors expected");
  TORCH_CHECK(values.scalar_type() == at::kChar && values.dim() == 2 && values.is_contiguous(),
              "values must be a contiguous int8 [N, K] tensor");
  const int64_t R = values.size(0);
  const int64_t K = values.size(1);
  TORCH_CHECK(K % kQ8Group == 0, "K must be a multiple of 32, got ", K);
  TORCH_CHECK(scales.scalar_type() == at::kBFloat16 && scales.dim() == 2 && scales.size(0) == R &&
                  scales.size(1) == K / kQ8Group && scales.is_contiguous(),
              "scales must be a contiguous bfloat16 [N, K/32] tensor");
  const uint16_t* sc = reinterpret_cast<const uint16_t*>(scales.data_ptr<c10::BFloat16>());
  at::Tensor out = at::empty({R, K}, values.options().dtype(bf16_out ? at::kBFloat16 : at::kFloat));
  if (bf16_out) {
    q8_dequantize_rows(values.data_ptr<int8_t>(), sc, R, K, out.data_ptr<c10::BFloat16>());
  } else {
    q8_dequantize_rows(values.data_ptr<int8_t>(), sc, R, K, out.data_ptr<float>());
  }
  return out;
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("q8_quantize(Tensor weight) -> (Tensor, Tensor)", &GPTOSS_OP_NAMESPACE::q8_quantize);
  m.def("q8_dequantize(Tensor values, Tensor scales, bool bf16_out) -> Tensor", &GPTOSS_OP_NAMESPACE::q8_dequantize);
  m.def("q8_linear(Tensor x, Tensor values, Tensor scales, Tensor? bias, bool fp32_out=False) -> Tensor",
        &GPTOSS_OP_NAMESPACE::q8_linear);
}
