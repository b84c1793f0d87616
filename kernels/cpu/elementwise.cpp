// RMSNorm (with the residual add) and RoPE of CPU decode as single calls (Python wrappers: kernels/cpu_elementwise.py).
//
// Why C++ at all: at decode a token's RMSNorm is ~9 torch ops on a [1, 2880] row and its RoPE ~8 more; each costs a
// few microseconds of dispatch, ~0.2 ms per layer on the 20b, where the arithmetic itself is ~1 us. Rounding follows
// the torch references op for op (kernels.rmsnorm.rmsnorm_ref, kernels.rope.rope_ref): every intermediate the
// reference rounds to the activation dtype is rounded here too. Only the order of the fp32 mean-of-squares sum differs.
#include "common.h"

namespace GPTOSS_OP_NAMESPACE {
namespace {

template <typename T>
inline float round_like(float v) {
  return static_cast<float>(static_cast<T>(v));  // float -> T -> float: the rounding a torch op on T does
}

// rows x H: out = rmsnorm(x [+ delta]), sum = x + delta rounded to T (only when delta is given).
template <typename T>
void rmsnorm_rows(const T* x, const T* delta, const float* scale, int64_t rows, int64_t H, float eps, T* sum,
                  T* out) {
  at::parallel_for(0, rows, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> v(static_cast<size_t>(H));
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * H;
      for (int64_t i = 0; i < H; ++i) {
        if (delta != nullptr) {
          const T s = static_cast<T>(static_cast<float>(xr[i]) + static_cast<float>(delta[r * H + i]));
          sum[r * H + i] = s;
          v[i] = static_cast<float>(s);
        } else {
          v[i] = static_cast<float>(xr[i]);
        }
      }
      // Sixteen independent partial sums (vectorised by the compiler), then combined: fp32 like torch's mean.
      float part[16] = {};
      int64_t i = 0;
      for (; i + 16 <= H; i += 16)
        for (int j = 0; j < 16; ++j) part[j] += v[i + j] * v[i + j];
      float ss = 0.0f;
      for (; i < H; ++i) ss += v[i] * v[i];
      for (int j = 0; j < 16; ++j) ss += part[j];
      const float inv = 1.0f / std::sqrt(ss / static_cast<float>(H) + eps);
      T* o = out + r * H;
      for (int64_t k = 0; k < H; ++k) o[k] = static_cast<T>((v[k] * inv) * scale[k]);
    }
  });
}

std::tuple<at::Tensor, at::Tensor> rmsnorm_op(const at::Tensor& x, const std::optional<at::Tensor>& delta,
                                              const at::Tensor& scale, double eps) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x must be a contiguous CPU [T, H] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  const int64_t T = x.size(0), H = x.size(1);
  TORCH_CHECK(scale.scalar_type() == at::kFloat && scale.is_contiguous() && scale.numel() == H,
              "scale must be a contiguous float32 [H] tensor");
  const bool has_delta = delta.has_value() && delta->defined();
  if (has_delta) {
    TORCH_CHECK(delta->sizes() == x.sizes() && delta->scalar_type() == x.scalar_type() && delta->is_contiguous(),
                "delta must be a contiguous tensor of x's shape and dtype");
  }
  at::Tensor out = at::empty(x.sizes(), x.options());
  at::Tensor sum = has_delta ? at::empty(x.sizes(), x.options()) : x;
  if (x.scalar_type() == at::kFloat) {
    rmsnorm_rows<float>(x.data_ptr<float>(), has_delta ? delta->data_ptr<float>() : nullptr, scale.data_ptr<float>(),
                        T, H, static_cast<float>(eps), has_delta ? sum.data_ptr<float>() : nullptr,
                        out.data_ptr<float>());
  } else {
    rmsnorm_rows<c10::BFloat16>(x.data_ptr<c10::BFloat16>(),
                                has_delta ? delta->data_ptr<c10::BFloat16>() : nullptr, scale.data_ptr<float>(), T,
                                H, static_cast<float>(eps), has_delta ? sum.data_ptr<c10::BFloat16>() : nullptr,
                                out.data_ptr<c10::BFloat16>());
  }
  return {sum, out};
}

// x [T, heads, D] rotated by cos/sin [T, D/2] (fp32, cast to T first, as rope_ref does), rotate-half.
template <typename T>
void rope_rows(const T* x, const float* cos, const float* sin, int64_t tokens, int64_t heads, int64_t D, T* out) {
  const int64_t half = D / 2;
  at::parallel_for(0, tokens * heads, 64, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t t = i / heads;
      const T* xr = x + i * D;
      T* o = out + i * D;
      for (int64_t j = 0; j < half; ++j) {
        const float c = round_like<T>(cos[t * half + j]);
        const float s = round_like<T>(sin[t * half + j]);
        const float x1 = static_cast<float>(xr[j]);
        const float x2 = static_cast<float>(xr[half + j]);
        o[j] = static_cast<T>(round_like<T>(x1 * c) - round_like<T>(x2 * s));
        o[half + j] = static_cast<T>(round_like<T>(x2 * c) + round_like<T>(x1 * s));
      }
    }
  });
}

at::Tensor rope_op(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 3 && x.is_contiguous(), "x must be a contiguous CPU [T, heads, D]");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  const int64_t T = x.size(0), heads = x.size(1), D = x.size(2);
  TORCH_CHECK(D % 2 == 0, "head_dim must be even");
  TORCH_CHECK(cos.scalar_type() == at::kFloat && sin.scalar_type() == at::kFloat && cos.is_contiguous() &&
                  sin.is_contiguous() && cos.dim() == 2 && cos.size(0) == T && cos.size(1) == D / 2 &&
                  sin.sizes() == cos.sizes(),
              "cos and sin must be contiguous float32 [T, D/2] tensors");
  at::Tensor out = at::empty(x.sizes(), x.options());
  if (x.scalar_type() == at::kFloat) {
    rope_rows<float>(x.data_ptr<float>(), cos.data_ptr<float>(), sin.data_ptr<float>(), T, heads, D,
                     out.data_ptr<float>());
  } else {
    rope_rows<c10::BFloat16>(x.data_ptr<c10::BFloat16>(), cos.data_ptr<float>(), sin.data_ptr<float>(), T, heads, D,
                             out.data_ptr<c10::BFloat16>());
  }
  return out;
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("rmsnorm(Tensor x, Tensor? delta, Tensor scale, float eps) -> (Tensor, Tensor)",
        &GPTOSS_OP_NAMESPACE::rmsnorm_op);
  m.def("rope(Tensor x, Tensor cos, Tensor sin) -> Tensor", &GPTOSS_OP_NAMESPACE::rope_op);
}
