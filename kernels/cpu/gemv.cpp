// The GEMVs of CPU decode: mxfp4_linear (x @ dequantize_mxfp4(blocks, scales).T + bias without ever materialising
// the weight) and bf16_linear (a streaming GEMV for the dense bf16 projections). Python wrappers: kernels/cpu_mxfp4.py.
#include "bf16_gemv.h"
#include "mxfp4_rows.h"

namespace GPTOSS_OP_NAMESPACE {
namespace {

// Calls of up to this many tokens are decode steps (one token per sequence): they use kRowExact tiles, so a batched
// step gives each token what it would get alone. Longer calls (prefill) take the cheaper shared-scaling tiles.
constexpr int64_t kExactMaxTokens = 16;

template <bool kRowExact>
void dispatch_row(int tt, const uint8_t* blk, const uint8_t* sc, int64_t G, const float* xp, int64_t xstride,
                  const float* stab, float* res) {
  switch (tt) {
    case 4: row_dot<4, kRowExact>(blk, sc, G, xp, xstride, stab, res); break;
    case 2: row_dot<2, kRowExact>(blk, sc, G, xp, xstride, stab, res); break;
    default: row_dot<1, kRowExact>(blk, sc, G, xp, xstride, stab, res); break;
  }
}

at::Tensor mxfp4_linear(const at::Tensor& x, const at::Tensor& blocks, const at::Tensor& scales,
                        const std::optional<at::Tensor>& bias) {
  // The Python wrapper gives friendlier errors; these checks keep a direct torch.ops call from reading out of bounds.
  TORCH_CHECK(x.device().is_cpu() && blocks.device().is_cpu() && scales.device().is_cpu(), "CPU tensors expected");
  TORCH_CHECK(x.dim() == 2 && x.is_contiguous(), "x must be a contiguous [T, K] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  TORCH_CHECK(blocks.scalar_type() == at::kByte && scales.scalar_type() == at::kByte, "blocks/scales must be uint8");
  TORCH_CHECK(blocks.dim() == 3 && blocks.size(2) == 16 && blocks.is_contiguous(),
              "blocks must be contiguous [N, G, 16]");
  const int64_t N = blocks.size(0);
  const int64_t G = blocks.size(1);
  const int64_t T = x.size(0);
  const int64_t K = G * 32;
  TORCH_CHECK(scales.dim() == 2 && scales.size(0) == N && scales.size(1) == G && scales.is_contiguous(),
              "scales must be contiguous [N, G]");
  TORCH_CHECK(x.size(1) == K, "x has ", x.size(1), " columns, weights have ", K);
  const BiasView bias_view = view_bias(bias, N);
  const float* bias_f = bias_view.f32;
  const c10::BFloat16* bias_bf = bias_view.bf16;

  at::Tensor out = at::empty({T, N}, x.options());
  if (T == 0 || N == 0) return out;

  const std::vector<float> xp = mxfp4_activations(x, T, K);

  const bool exact = T <= kExactMaxTokens;
  const uint8_t* blk = blocks.data_ptr<uint8_t>();
  const uint8_t* sc = scales.data_ptr<uint8_t>();
  const float* stab = scale_table();
  const bool out_f32 = out.scalar_type() == at::kFloat;
  float* out_f = out_f32 ? out.data_ptr<float>() : nullptr;
  c10::BFloat16* out_bf = out_f32 ? nullptr : out.data_ptr<c10::BFloat16>();
  const float* xpp = xp.data();

  // Rows are handed out in chunks from a shared counter rather than split statically: on a busy desktop (or a 2-core
  // CI box) one OpenMP thread is often descheduled, and with a static split the whole call would wait a scheduler
  // tick (~4 ms) for it, while here the running threads take over its share. Chunks stay large enough that each
  // thread still streams long contiguous runs of weight bytes.
  const int64_t chunk = 64;
  const int64_t n_chunks = (N + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), n_chunks);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    float res[kMaxTile];
    for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < n_chunks;
         c = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t n0 = c * chunk;
      const int64_t n1 = std::min(N, n0 + chunk);
      // Token tiles outside, rows inside: a later tile re-reads the chunk's weights from L2 (~100 KB), while the
      // tile's activations stay in L1.
      for (int64_t t0 = 0; t0 < T;) {
        const int64_t left = T - t0;
        const int tt = left >= 4 ? 4 : left >= 2 ? 2 : 1;
        for (int64_t n = n0; n < n1; ++n) {
          if (exact) {
            dispatch_row<true>(tt, blk + n * G * 16, sc + n * G, G, xpp + t0 * K, K, stab, res);
          } else {
            dispatch_row<false>(tt, blk + n * G * 16, sc + n * G, G, xpp + t0 * K, K, stab, res);
          }
          const float b = bias_f ? bias_f[n] : (bias_bf ? static_cast<float>(bias_bf[n]) : 0.0f);
          for (int i = 0; i < tt; ++i) {
            const float v = res[i] + b;
            if (out_f32) {
              out_f[(t0 + i) * N + n] = v;
            } else {
              out_bf[(t0 + i) * N + n] = c10::BFloat16(v);  // round-to-nearest-even, like Tensor.to(bfloat16)
            }
          }
        }
        t0 += tt;
      }
    }
  });
  return out;
}

// The dense bf16 projections' GEMV, x [T, K] @ weight.T + bias, over the checkpoint's rows in place (the kernels are
// in bf16_gemv.h, shared with the 12-bit rows of gemv_bf16_packed.cpp).
at::Tensor bf16_linear(const at::Tensor& x, const at::Tensor& weight, const std::optional<at::Tensor>& bias,
                       bool fp32_out) {
  TORCH_CHECK(weight.device().is_cpu(), "CPU tensors expected");
  TORCH_CHECK(weight.scalar_type() == at::kBFloat16 && weight.dim() == 2 && weight.is_contiguous(),
              "weight must be a contiguous bfloat16 [N, K] tensor");
  const PlainBf16Rows rows{reinterpret_cast<const uint16_t*>(weight.data_ptr<c10::BFloat16>()), weight.size(0),
                           weight.size(1)};
  return bf16_gemv(x, rows, bias, fp32_out);
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("linear(Tensor x, Tensor blocks, Tensor scales, Tensor? bias) -> Tensor", &GPTOSS_OP_NAMESPACE::mxfp4_linear);
  m.def("bf16_linear(Tensor x, Tensor weight, Tensor? bias, bool fp32_out=False) -> Tensor",
        &GPTOSS_OP_NAMESPACE::bf16_linear);
}
