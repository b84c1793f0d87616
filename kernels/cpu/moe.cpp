// The whole MoE MLP of CPU decode and prefill in one call (Python wrapper: kernels/cpu_mxfp4.py, moe_mxfp4).
//
// One call does what moe_ref does: route pairs (token, slot) to experts, mlp1, SwiGLU, mlp2 and the routing-weighted
// sum. Per layer that is two parallel regions instead of 2 x k kernel calls plus ~20 small torch ops (measured ~0.7 ms
// of overhead per layer on the 20b preset at batch 1). Two ops share it: `moe` (decode) runs each projection as
// fused GEMVs with kRowExact tiles, so a token's output does not depend on the rest of the batch; `moe_prefill` runs
// them as a blocked GEMM (moe_gemm.h) that decodes each weight block once per call. Both round intermediates to x's
// dtype at the same points as the torch reference (after each projection and each SwiGLU op).
#include "moe_gemm.h"
#include "mxfp4_rows.h"

namespace GPTOSS_OP_NAMESPACE {
namespace {

inline float round_to(float v, bool bf16) { return bf16 ? static_cast<float>(c10::BFloat16(v)) : v; }

struct ExpertRuns {
  std::vector<int64_t> pair_of;  // [P] source pair (t * k + slot) of each sorted row, grouped by expert
  std::vector<int64_t> row_of;   // [P] sorted row of each pair
  std::vector<int64_t> expert;   // experts with at least one pair, ascending
  std::vector<int64_t> start;    // [expert.size() + 1] first sorted row of each
};

ExpertRuns sort_by_expert(const int64_t* idx, int64_t pairs, int64_t num_experts) {
  ExpertRuns runs;
  std::vector<int64_t> count(static_cast<size_t>(num_experts), 0);
  for (int64_t p = 0; p < pairs; ++p) {
    TORCH_CHECK(idx[p] >= 0 && idx[p] < num_experts, "expert index ", idx[p], " out of range [0, ", num_experts, ")");
    ++count[idx[p]];
  }
  std::vector<int64_t> offset(static_cast<size_t>(num_experts), 0);
  int64_t row = 0;
  for (int64_t e = 0; e < num_experts; ++e) {
    if (count[e] == 0) continue;
    runs.expert.push_back(e);
    runs.start.push_back(row);
    offset[e] = row;
    row += count[e];
  }
  runs.start.push_back(row);
  runs.pair_of.resize(static_cast<size_t>(pairs));
  runs.row_of.resize(static_cast<size_t>(pairs));
  for (int64_t p = 0; p < pairs; ++p) {  // stable: pairs of one expert keep token order
    const int64_t r = offset[idx[p]]++;
    runs.pair_of[r] = p;
    runs.row_of[p] = r;
  }
  return runs;
}

// out[r, n] = round(x[r] . W_e[n] + bias_e[n]) for the sorted rows of every used expert, as row-exact fused GEMVs.
// x: [P] rows xstride elements apart, in the layout `dot` reads; dot(tt, blk_row, sc_row, x_rows, res) sums one
// weight row against tt (1, 2 or 4) consecutive rows of x.
template <typename Act, typename RowDot>
void expert_projection(const ExpertRuns& runs, const uint8_t* blocks, const uint8_t* scales, const BiasView& bias,
                       int64_t N, int64_t G, const Act* x, int64_t xstride, bool bf16, float* out, const RowDot& dot) {
  // 1440 rows (~2.2 MB of an expert's weights at K = 2880; a quarter of gpt-oss's mlp1, half of its mlp2): a chunk
  // restarts the thread's stream. 64-row chunks cost ~1 ms of a ~9.5 ms MoE decode step against 192-row ones, and
  // 1440 rows took one MoE call of 20b's shapes from 1.89-1.96 to 1.82 ms at one token and from 6.80-7.08 to
  // 6.48-6.79 ms at four (avx512bf16), 2.38 to 2.25 ms at avx2 (AMD EPYC Zen 4, 2 threads, alternating processes);
  // 2880 and whole experts measured the same as 1440.
  constexpr int64_t chunk = 1440;
  const int64_t chunks_per_expert = (N + chunk - 1) / chunk;
  const int64_t items = static_cast<int64_t>(runs.expert.size()) * chunks_per_expert;
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), items);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    float res[kMaxTile];
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < items;
         item = next.fetch_add(1, std::memory_order_relaxed)) {
      const size_t u = static_cast<size_t>(item / chunks_per_expert);
      const int64_t e = runs.expert[u];
      const int64_t n0 = (item % chunks_per_expert) * chunk;
      const int64_t n1 = std::min(N, n0 + chunk);
      const uint8_t* blk = blocks + e * N * G * 16;
      const uint8_t* sc = scales + e * N * G;
      for (int64_t r0 = runs.start[u]; r0 < runs.start[u + 1];) {
        const int64_t left = runs.start[u + 1] - r0;
        const int tt = left >= 4 ? 4 : left >= 2 ? 2 : 1;
        for (int64_t n = n0; n < n1; ++n) {
          dot(tt, blk + n * G * 16, sc + n * G, x + r0 * xstride, res);
          const int64_t bi = e * N + n;
          const float b = bias.f32 ? bias.f32[bi] : (bias.bf16 ? static_cast<float>(bias.bf16[bi]) : 0.0f);
          for (int i = 0; i < tt; ++i) out[(r0 + i) * N + n] = round_to(res[i] + b, bf16);
        }
        r0 += tt;
      }
    }
  });
}

// expert_projection with fp32 activations in mxfp4_layout (row_dot).
void expert_projection_fp32(const ExpertRuns& runs, const uint8_t* blocks, const uint8_t* scales,
                            const BiasView& bias, int64_t N, int64_t G, const float* x, bool bf16, float* out) {
  const int64_t K = G * 32;
  const float* stab = scale_table();
  expert_projection(runs, blocks, scales, bias, N, G, x, K, bf16, out,
                    [&](int tt, const uint8_t* blk, const uint8_t* sc, const float* xr, float* res) {
                      switch (tt) {
                        case 4: row_dot<4, true>(blk, sc, G, xr, K, stab, res); break;
                        case 2: row_dot<2, true>(blk, sc, G, xr, K, stab, res); break;
                        default: row_dot<1, true>(blk, sc, G, xr, K, stab, res); break;
                      }
                    });
}

#if defined(GPTOSS_BF16_DOT)
// expert_projection with bf16 activations in pair_layout, rows pair_padded(G * 32) apart (row_dot_dp).
void expert_projection_dp(const ExpertRuns& runs, const uint8_t* blocks, const uint8_t* scales, const BiasView& bias,
                          int64_t N, int64_t G, const uint16_t* x, bool bf16, float* out) {
  const int64_t Kp = pair_padded(G * 32);
  const float* stab = scale_table();
  expert_projection(runs, blocks, scales, bias, N, G, x, Kp, bf16, out,
                    [&](int tt, const uint8_t* blk, const uint8_t* sc, const uint16_t* xr, float* res) {
                      switch (tt) {
                        case 4: row_dot_dp<4>(blk, sc, G, xr, Kp, stab, res); break;
                        case 2: row_dot_dp<2>(blk, sc, G, xr, Kp, stab, res); break;
                        default: row_dot_dp<1>(blk, sc, G, xr, Kp, stab, res); break;
                      }
                    });
}
#endif

#if defined(GPTOSS_I16_MOE)
// expert_projection with int16 activations in i16_layout (row_dot_i16): xq rows of i16_pairs(K) * 64 values, xs rows
// of i16_pairs(K) * 8 scales.
void expert_projection_i16(const ExpertRuns& runs, const uint8_t* blocks, const uint8_t* scales, const BiasView& bias,
                           int64_t N, int64_t G, const int16_t* xq, const float* xs, bool bf16, float* out) {
  const int64_t xstride = i16_pairs(G * 32) * 64;
  const int64_t sstride = i16_pairs(G * 32) * 8;
  const float* stab = scale_table();
  expert_projection(runs, blocks, scales, bias, N, G, xq, xstride, bf16, out,
                    [&](int tt, const uint8_t* blk, const uint8_t* sc, const int16_t* xr, float* res) {
                      const float* sr = xs + (xr - xq) / xstride * sstride;  // the same sorted row's scales
                      switch (tt) {
                        case 4: row_dot_i16<4>(blk, sc, G, xr, xstride, sr, sstride, stab, res); break;
                        case 2: row_dot_i16<2>(blk, sc, G, xr, xstride, sr, sstride, stab, res); break;
                        default: row_dot_i16<1>(blk, sc, G, xr, xstride, sr, sstride, stab, res); break;
                      }
                    });
}
#endif

// expert_projection's result through the blocked GEMM (moe_gemm.h); x: [P][K] in the GemmKernel<Act>'s order
// (fp32: mxfp4_layout; bf16: natural).
template <typename Act>
void expert_projection_gemm(const ExpertRuns& runs, const uint8_t* blocks, const uint8_t* scales, const BiasView& bias,
                            int64_t N, int64_t G, const Act* x, bool bf16, float* out) {
  using Gemm = GemmKernel<Act>;
  const int64_t K = G * 32;
  const float* stab = scale_table();
  TORCH_CHECK(N % kGemmRows == 0, "expert outputs (", N, ") must fill whole panels of ", kGemmRows);
  const int64_t panels = N / kGemmRows;
  const int64_t items = static_cast<int64_t>(runs.expert.size()) * panels;
  int64_t most_rows = 0;
  for (size_t u = 0; u < runs.expert.size(); ++u) most_rows = std::max(most_rows, runs.start[u + 1] - runs.start[u]);
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), items);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<typename Gemm::Panel> panel(static_cast<size_t>(Gemm::kDepth * kGemmRows));
    std::vector<float> acc(static_cast<size_t>(most_rows * kGemmRows));  // [tokens of the expert][kGemmRows]
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < items;
         item = next.fetch_add(1, std::memory_order_relaxed)) {
      const size_t u = static_cast<size_t>(item / panels);
      const int64_t e = runs.expert[u];
      const int64_t n0 = (item % panels) * kGemmRows;
      const int64_t r0 = runs.start[u];
      const int64_t tokens = runs.start[u + 1] - r0;
      const uint8_t* blk = blocks + e * N * G * 16;
      const uint8_t* sc = scales + e * N * G;
      for (int64_t k0 = 0; k0 < K; k0 += Gemm::kDepth) {
        const int64_t kc = std::min(Gemm::kDepth, K - k0);
        Gemm::pack(blk, sc, G, n0, k0 / 32, kc / 32, stab, panel.data());
        panel_times_tokens<Act>(panel.data(), kc, x + r0 * K + k0, K, tokens, acc.data(), k0 == 0);
      }
      for (int64_t t = 0; t < tokens; ++t) {
        for (int r = 0; r < kGemmRows; ++r) {
          const int64_t bi = e * N + n0 + r;
          const float b = bias.f32 ? bias.f32[bi] : (bias.bf16 ? static_cast<float>(bias.bf16[bi]) : 0.0f);
          out[(r0 + t) * N + n0 + r] = round_to(acc[t * kGemmRows + r] + b, bf16);
        }
      }
    }
  });
}

// gpt-oss SwiGLU of one row h [2I] (even = gate, odd = linear) into a [I], rounding after each op like the torch
// reference does on bf16 tensors.
void swiglu_row(const float* h, int64_t I, float limit, float alpha, bool bf16, float* a) {
  for (int64_t i = 0; i < I; ++i) {
    const float gate = std::min(h[2 * i], limit);  // NaN stays NaN, as with clamp
    const float lin = std::max(std::min(h[2 * i + 1], limit), -limit);
    const float z = round_to(alpha * gate, bf16);
    const float sig = round_to(1.0f / (1.0f + std::exp(-z)), bf16);
    a[i] = round_to(round_to(gate * sig, bf16) * round_to(lin + 1.0f, bf16), bf16);
  }
}

// gemm: the projections as moe_gemm.h's blocked GEMM (prefill), else as row-exact fused GEMVs (decode).
at::Tensor moe_run(const at::Tensor& x, const at::Tensor& indices, const at::Tensor& weights, const at::Tensor& blocks1,
                   const at::Tensor& scales1, const at::Tensor& bias1, const at::Tensor& blocks2,
                   const at::Tensor& scales2, const at::Tensor& bias2, double limit, double alpha, bool gemm) {
  TORCH_CHECK(x.device().is_cpu() && x.dim() == 2 && x.is_contiguous(), "x must be a contiguous CPU [T, H] tensor");
  TORCH_CHECK(x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16, "x must be float32 or bfloat16");
  TORCH_CHECK(indices.scalar_type() == at::kLong && indices.dim() == 2 && indices.is_contiguous(),
              "indices must be contiguous int64 [T, k]");
  TORCH_CHECK(weights.scalar_type() == at::kFloat && weights.sizes() == indices.sizes() && weights.is_contiguous(),
              "weights must be contiguous float32 [T, k]");
  TORCH_CHECK(blocks1.scalar_type() == at::kByte && blocks1.dim() == 4 && blocks1.size(3) == 16 &&
                  blocks1.is_contiguous() && blocks2.scalar_type() == at::kByte && blocks2.dim() == 4 &&
                  blocks2.size(3) == 16 && blocks2.is_contiguous(),
              "blocks must be contiguous uint8 [E, N, G, 16]");
  const int64_t T = x.size(0);
  const int64_t H = x.size(1);
  const int64_t k = indices.size(1);
  const int64_t E = blocks1.size(0);
  const int64_t N1 = blocks1.size(1);
  const int64_t G1 = blocks1.size(2);
  const int64_t I = N1 / 2;
  const int64_t G2 = blocks2.size(2);
  TORCH_CHECK(indices.size(0) == T, "indices has ", indices.size(0), " rows for ", T, " tokens");
  TORCH_CHECK(G1 * 32 == H && N1 % 2 == 0 && blocks2.size(0) == E && blocks2.size(1) == H && G2 * 32 == I,
              "expert shapes do not fit x: mlp1 ", blocks1.sizes(), ", mlp2 ", blocks2.sizes(), ", H = ", H);
  TORCH_CHECK(scales1.scalar_type() == at::kByte && scales1.is_contiguous() && scales1.dim() == 3 &&
                  scales1.size(0) == E && scales1.size(1) == N1 && scales1.size(2) == G1,
              "scales1 must be contiguous uint8 [E, N1, G1]");
  TORCH_CHECK(scales2.scalar_type() == at::kByte && scales2.is_contiguous() && scales2.dim() == 3 &&
                  scales2.size(0) == E && scales2.size(1) == H && scales2.size(2) == G2,
              "scales2 must be contiguous uint8 [E, H, G2]");
  TORCH_CHECK(bias1.dim() == 2 && bias1.size(0) == E && bias2.dim() == 2 && bias2.size(0) == E &&
                  bias1.is_contiguous() && bias2.is_contiguous(),
              "biases must be contiguous [E, N]");  // contiguous, so the flat views below share their storage
  const BiasView b1 = view_bias(bias1.reshape({-1}), E * N1);
  const BiasView b2 = view_bias(bias2.reshape({-1}), E * H);
  const bool bf16 = x.scalar_type() == at::kBFloat16;

  at::Tensor out = at::empty({T, H}, x.options());
  if (T == 0) return out;
  const int64_t P = T * k;
  const ExpertRuns runs = sort_by_expert(indices.data_ptr<int64_t>(), P, E);

  std::vector<float> h(static_cast<size_t>(P * N1));  // mlp1 outputs of the sorted rows
  std::vector<float> y(static_cast<size_t>(P * H));   // mlp2 outputs
  // SwiGLU of sorted rows r0 .. r1 - 1 of h, each handed to emit(row, a) as a [I] fp32 row.
  const auto swiglu_rows = [&](int64_t r0, int64_t r1, const auto& emit) {
    std::vector<float> a(static_cast<size_t>(I));
    for (int64_t r = r0; r < r1; ++r) {
      swiglu_row(h.data() + r * N1, I, static_cast<float>(limit), static_cast<float>(alpha), bf16, a.data());
      emit(r, a.data());
    }
  };
#if defined(GPTOSS_BF16_DOT)
  if (bf16 && gemm) {
    // bf16 activations in natural order for the GEMM's bf16-pair panels: each sorted row is its token's row of x,
    // and SwiGLU's outputs are bf16 values already (swiglu_row rounds), so nothing is rounded that was not before.
    const c10::BFloat16* xb = x.data_ptr<c10::BFloat16>();
    std::vector<c10::BFloat16> x1(static_cast<size_t>(P * H));
    at::parallel_for(0, P, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        std::memcpy(x1.data() + r * H, xb + (runs.pair_of[r] / k) * H, sizeof(c10::BFloat16) * H);
      }
    });
    expert_projection_gemm(runs, blocks1.data_ptr<uint8_t>(), scales1.data_ptr<uint8_t>(), b1, N1, G1, x1.data(),
                           bf16, h.data());
    std::vector<c10::BFloat16> x2(static_cast<size_t>(P * I));
    at::parallel_for(0, P, 1, [&](int64_t r0, int64_t r1) {
      swiglu_rows(r0, r1, [&](int64_t r, const float* a) {
        for (int64_t i = 0; i < I; ++i) x2[r * I + i] = c10::BFloat16(a[i]);
      });
    });
    expert_projection_gemm(runs, blocks2.data_ptr<uint8_t>(), scales2.data_ptr<uint8_t>(), b2, H, G2, x2.data(), bf16,
                           y.data());
  } else if (bf16) {
    // Decode with bf16 activations: row_dot_dp over pair_layout rows (a few tokens; each copy is ~6 KB).
    const int64_t Hp = pair_padded(H);
    const int64_t Ip = pair_padded(I);
    const c10::BFloat16* xb = x.data_ptr<c10::BFloat16>();
    std::vector<uint16_t> x1(static_cast<size_t>(P * Hp));
    for (int64_t r = 0; r < P; ++r) pair_layout(xb + (runs.pair_of[r] / k) * H, H, x1.data() + r * Hp);
    expert_projection_dp(runs, blocks1.data_ptr<uint8_t>(), scales1.data_ptr<uint8_t>(), b1, N1, G1, x1.data(), bf16,
                         h.data());
    std::vector<uint16_t> x2(static_cast<size_t>(P * Ip));
    swiglu_rows(0, P, [&](int64_t r, const float* a) { pair_layout(a, I, x2.data() + r * Ip); });
    expert_projection_dp(runs, blocks2.data_ptr<uint8_t>(), scales2.data_ptr<uint8_t>(), b2, H, G2, x2.data(), bf16,
                         y.data());
  } else  // NOLINT(readability/braces): the fp32-activation path below serves both
#endif
#if defined(GPTOSS_I16_MOE)
      if (bf16 && !gemm) {
    // Decode on AVX2 with bf16 activations: int16 in i16_layout, each sorted row its token's (a few tokens; ~6 KB a
    // row). fp32 activations (an fp32 model) keep the fp32 path below: int16 is far finer than bf16's 8 bits, not
    // than fp32's 24.
    const int64_t Hq = i16_pairs(H) * 64;
    const int64_t Iq = i16_pairs(I) * 64;
    const c10::BFloat16* xb = x.data_ptr<c10::BFloat16>();
    std::vector<int16_t> x1(static_cast<size_t>(P * Hq));
    std::vector<float> s1(static_cast<size_t>(P * i16_pairs(H) * 8));
    for (int64_t r = 0; r < P; ++r) {
      i16_layout(xb + (runs.pair_of[r] / k) * H, H, x1.data() + r * Hq, s1.data() + r * i16_pairs(H) * 8);
    }
    expert_projection_i16(runs, blocks1.data_ptr<uint8_t>(), scales1.data_ptr<uint8_t>(), b1, N1, G1, x1.data(),
                          s1.data(), bf16, h.data());
    std::vector<int16_t> x2(static_cast<size_t>(P * Iq));
    std::vector<float> s2(static_cast<size_t>(P * i16_pairs(I) * 8));
    swiglu_rows(0, P, [&](int64_t r, const float* a) {
      i16_layout(a, I, x2.data() + r * Iq, s2.data() + r * i16_pairs(I) * 8);
    });
    expert_projection_i16(runs, blocks2.data_ptr<uint8_t>(), scales2.data_ptr<uint8_t>(), b2, H, G2, x2.data(),
                          s2.data(), bf16, y.data());
  } else  // NOLINT(readability/braces): the fp32-activation path below serves the GEMM
#endif
  {
    const auto project = [&](const uint8_t* blocks, const uint8_t* scales, const BiasView& bias, int64_t N,
                             int64_t G, const float* in, float* result) {
      if (gemm) {
        expert_projection_gemm(runs, blocks, scales, bias, N, G, in, bf16, result);
      } else {
        expert_projection_fp32(runs, blocks, scales, bias, N, G, in, bf16, result);
      }
    };
    // mlp1 input: each sorted row is its token's activations, in the level's layout (mxfp4_layout), which both
    // row_dot and the GEMM's fp32 panels follow.
    const std::vector<float> xt = mxfp4_activations(x, T, H);
    std::vector<float> x1(static_cast<size_t>(P * H));
    at::parallel_for(0, P, 16, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        std::memcpy(x1.data() + r * H, xt.data() + (runs.pair_of[r] / k) * H, sizeof(float) * H);
      }
    });
    project(blocks1.data_ptr<uint8_t>(), scales1.data_ptr<uint8_t>(), b1, N1, G1, x1.data(), h.data());
    // SwiGLU per sorted row, then into the layout for mlp2.
    std::vector<float> x2(static_cast<size_t>(P * I));
    at::parallel_for(0, P, 1, [&](int64_t r0, int64_t r1) {
      swiglu_rows(r0, r1, [&](int64_t r, const float* a) { mxfp4_layout(a, 1, I, x2.data() + r * I); });
    });
    project(blocks2.data_ptr<uint8_t>(), scales2.data_ptr<uint8_t>(), b2, H, G2, x2.data(), y.data());
  }

  // Routing-weighted sum over each token's k experts, in fp32 and in routing order, rounded once.
  const float* w = weights.data_ptr<float>();
  float* out_f = bf16 ? nullptr : out.data_ptr<float>();
  c10::BFloat16* out_bf = bf16 ? out.data_ptr<c10::BFloat16>() : nullptr;
  at::parallel_for(0, T, 16, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t n = 0; n < H; ++n) {
        float acc = 0.0f;
        for (int64_t j = 0; j < k; ++j) acc += y[runs.row_of[t * k + j] * H + n] * w[t * k + j];
        if (bf16) {
          out_bf[t * H + n] = c10::BFloat16(acc);
        } else {
          out_f[t * H + n] = acc;
        }
      }
    }
  });
  return out;
}

at::Tensor moe_mxfp4(const at::Tensor& x, const at::Tensor& indices, const at::Tensor& weights,
                     const at::Tensor& blocks1, const at::Tensor& scales1, const at::Tensor& bias1,
                     const at::Tensor& blocks2, const at::Tensor& scales2, const at::Tensor& bias2, double limit,
                     double alpha) {
  return moe_run(x, indices, weights, blocks1, scales1, bias1, blocks2, scales2, bias2, limit, alpha, false);
}

at::Tensor moe_mxfp4_prefill(const at::Tensor& x, const at::Tensor& indices, const at::Tensor& weights,
                             const at::Tensor& blocks1, const at::Tensor& scales1, const at::Tensor& bias1,
                             const at::Tensor& blocks2, const at::Tensor& scales2, const at::Tensor& bias2,
                             double limit, double alpha) {
  return moe_run(x, indices, weights, blocks1, scales1, bias1, blocks2, scales2, bias2, limit, alpha, true);
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("moe(Tensor x, Tensor indices, Tensor weights, Tensor blocks1, Tensor scales1, Tensor bias1, Tensor blocks2, "
        "Tensor scales2, Tensor bias2, float limit, float alpha) -> Tensor",
        &GPTOSS_OP_NAMESPACE::moe_mxfp4);
  m.def("moe_prefill(Tensor x, Tensor indices, Tensor weights, Tensor blocks1, Tensor scales1, Tensor bias1, "
        "Tensor blocks2, Tensor scales2, Tensor bias2, float limit, float alpha) -> Tensor",
        &GPTOSS_OP_NAMESPACE::moe_mxfp4_prefill);
}
