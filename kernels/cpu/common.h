// Shared by every translation unit of the fused CPU kernels (gemv.cpp, moe.cpp, attention.cpp, elementwise.cpp,
// library.cpp). kernels/cpu_build.py compiles them once per instruction-set level with explicit -m flags; the code
// path is chosen here by the compiler's predefined macros (__AVX512F__, __AVX2__ && __FMA__, __AVX512BF16__, else
// portable C++).
#pragma once

#if defined(__AVX512F__) || defined(__AVX2__)
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12.2's AVX-512 intrinsics header makes its "undefined" vectors by initialising them from themselves
// (`__m512 __Y = __Y;`), which -Wall then reports as (maybe-)uninitialized wherever such an intrinsic is inlined
// (GCC bug 105593, fixed in 12.3 and 13). The warnings point into that header, so they are off for its lines only:
// the kernels' own lines keep both warnings. Included first, before torch's headers might include it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
#else
#include <immintrin.h>
#endif
#endif

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <tuple>
#include <vector>

// The build passes -DGPTOSS_OP_NAMESPACE=gptoss_cpu_<level>[_<tag>]: the ops register under torch.ops.<that name>,
// and all C++ below lives in a C++ namespace of the same name, so two variants loaded into one process (the tests load
// every level) never share a symbol that the dynamic linker could resolve to the other variant's code.
#ifndef GPTOSS_OP_NAMESPACE
#error "build with -DGPTOSS_OP_NAMESPACE=<op namespace> (kernels/cpu_build.py does)"
#endif
// TORCH_LIBRARY pastes and stringifies its namespace argument, which would use the macro's name, not its value; one
// more level of macro expansion passes the value.
#define GPTOSS_LIBRARY_EXPANDED(ns, m) TORCH_LIBRARY(ns, m)
#define GPTOSS_LIBRARY(m) GPTOSS_LIBRARY_EXPANDED(GPTOSS_OP_NAMESPACE, m)
#define GPTOSS_LIBRARY_FRAGMENT_EXPANDED(ns, m) TORCH_LIBRARY_FRAGMENT(ns, m)
#define GPTOSS_LIBRARY_FRAGMENT(m) GPTOSS_LIBRARY_FRAGMENT_EXPANDED(GPTOSS_OP_NAMESPACE, m)

// bf16 GEMV activations meet bf16 weights in vdpbf16ps (gemv.cpp); isa() reports the level as "avx512bf16".
#if defined(__AVX512BF16__) && defined(__AVX512BW__)
#define GPTOSS_BF16_DOT 1
#endif

namespace GPTOSS_OP_NAMESPACE {

// How far ahead (bytes) the MXFP4 rows (mxfp4_rows.h) and the 8-bit rows (gemv_q8.cpp) prefetch along a thread's
// weight stream. The hardware prefetchers alone leave a one-thread stream well short of the memory's pace on Intel
// server cores (Xeon, Emerald Rapids class, 2 threads): one 20b-shape MoE call took 2.44 -> 2.30 ms at avx512bf16 and
// 2.91 -> 2.27 ms at avx2 with 4 KiB ahead instead of the 2 KiB / 1 KiB before (8 KiB: the same as 4); `mini`'s 8-bit
// unembedding 21.7 -> 20.1 ms. On AMD Zen 3, 1-4 KiB had measured the same. -DGPTOSS_STREAM_PREFETCH=<bytes>
// overrides it for such measurements.
#ifdef GPTOSS_STREAM_PREFETCH
constexpr int64_t kStreamPrefetchBytes = GPTOSS_STREAM_PREFETCH;
#else
constexpr int64_t kStreamPrefetchBytes = 4096;
#endif

// How far ahead (bytes) the bf16 GEMVs' row sources (bf16_gemv.h, gemv_bf16_packed.cpp) prefetch: set once per
// process from Python (op set_bf16_prefetch; kernels/cpu_build.py's bf16_prefetch_bytes picks 4 KiB, or none on AMD
// CPUs, where the rows streamed faster without). 0 prefetches the line being read, which costs next to nothing.
inline int64_t g_bf16_prefetch_bytes = kStreamPrefetchBytes;

// Prefetch the line `bytes` past p for reading (a no-op hint: it never faults, even past the end of a mapping).
inline void prefetch_ahead(const void* p, int64_t bytes) {
  __builtin_prefetch(static_cast<const char*>(p) + bytes, 0, 3);
}

// bf16 bits as fp32 (exact: bf16 is fp32's upper half). For bf16 weights (gemv.cpp) and the 8-bit weights' scales
// (gemv_q8.cpp).
inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

#if defined(__AVX512F__)
// The 16-lane sums of up to 4 vectors at once, each with _mm512_reduce_add_ps's pairing (lane i with i+8, then i+4,
// i+2, i+1), so a token's sum is the same bits whether it is reduced alone or with others; sharing the shuffles
// between tokens matters at small K, where a row's reduction costs as much as its dot product.
template <int TT>
inline void reduce_lanes(const __m512* v, float* res) {
  static_assert(TT >= 1 && TT <= 4, "up to 4 vectors");
  const __m512 zero = _mm512_setzero_ps();
  const __m512 a = v[0];
  const __m512 b = TT > 1 ? v[1] : zero;
  const __m512 c = TT > 2 ? v[2] : zero;
  const __m512 d = TT > 3 ? v[3] : zero;
  // 16 -> 8 lanes: 128-bit quarters [q0 + q2, q1 + q3] of a, then of b (likewise c, d).
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  // 8 -> 4: quarter t of q holds vector t's (q0 + q2) + (q1 + q3).
  const __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  // 4 -> 2 -> 1 inside each quarter: lanes {0 + 2, 1 + 3}, then 0 + 1.
  const __m512 h = _mm512_add_ps(q, _mm512_permute_ps(q, 0x4E));
  const __m512 r = _mm512_add_ps(h, _mm512_permute_ps(h, 0xB1));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, r);
  for (int t = 0; t < TT; ++t) res[t] = lanes[4 * t];
}
#endif

template <typename T>
inline float to_float(T v) {
  return static_cast<float>(v);
}

// x [T, K] -> fp32 [T, K] with each full group of 32 reordered to [even elements, odd elements].
template <typename T>
inline void deinterleave(const T* x, int64_t rows, int64_t K, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = x + r * K;
    float* dst = out + r * K;
    int64_t g = 0;
    for (; g + 32 <= K; g += 32) {
      for (int j = 0; j < 16; ++j) {
        dst[g + j] = to_float(src[g + 2 * j]);
        dst[g + 16 + j] = to_float(src[g + 2 * j + 1]);
      }
    }
    for (; g < K; ++g) dst[g] = to_float(src[g]);  // a tail shorter than a group (bf16 GEMV only) stays in order
  }
}

// One group of 32 activations rounded to int16 for the integer dot products (the 8-bit GEMV, the AVX2 MoE decode):
// q[j] = round-half-even(src[j] * 32767 / absmax), clamped; returns the group's scale absmax / 32767, so src ~ q *
// scale with an error of at most absmax / 65534. An all-zero group gives scale 0 and values 0.
constexpr float kInt16ActMax = 32767.0f;

template <typename T>
inline float round_group_to_int16(const T* src, int16_t* q) {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(to_float(src[j])));
  const float inv = amax > 0.0f ? kInt16ActMax / amax : 0.0f;
  for (int j = 0; j < 32; ++j) {
    q[j] = static_cast<int16_t>(std::clamp(std::nearbyint(to_float(src[j]) * inv), -kInt16ActMax, kInt16ActMax));
  }
  return amax / kInt16ActMax;
}

// Token tile of a streaming GEMV: as many tokens (2 to max_tile) as keep their fp32 activations of K columns within
// budget_bytes of L1, so each weight row is loaded once per tile while the tile's activations stay cached.
inline int token_tile(int64_t K, int64_t budget_bytes, int max_tile) {
  return static_cast<int>(std::clamp<int64_t>(budget_bytes / (4 * std::max<int64_t>(1, K)), 2, max_tile));
}

// The optional bias of either op, read in place (fp32 or bf16); null pointers when there is none.
struct BiasView {
  const float* f32 = nullptr;
  const c10::BFloat16* bf16 = nullptr;
};

inline BiasView view_bias(const std::optional<at::Tensor>& bias, int64_t N) {
  BiasView view;
  if (bias.has_value() && bias->defined()) {
    TORCH_CHECK(bias->device().is_cpu() && bias->dim() == 1 && bias->size(0) == N && bias->is_contiguous(),
                "bias must be a contiguous CPU [N] tensor");
    if (bias->scalar_type() == at::kFloat) {
      view.f32 = bias->data_ptr<float>();
    } else {
      TORCH_CHECK(bias->scalar_type() == at::kBFloat16, "bias must be float32 or bfloat16");
      view.bf16 = bias->data_ptr<c10::BFloat16>();
    }
  }
  return view;
}

// x [T, K] (fp32 or bf16) as fp32 in the per-32-group even/odd layout of the bf16 GEMV (and of the MXFP4 kernels
// except on AVX2: mxfp4_activations, mxfp4_rows.h).
inline std::vector<float> deinterleaved_activations(const at::Tensor& x, int64_t T, int64_t K) {
  std::vector<float> xp(static_cast<size_t>(T * K));
  if (x.scalar_type() == at::kFloat) {
    deinterleave(x.data_ptr<float>(), T, K, xp.data());
  } else {
    deinterleave(x.data_ptr<c10::BFloat16>(), T, K, xp.data());
  }
  return xp;
}

}  // namespace GPTOSS_OP_NAMESPACE
