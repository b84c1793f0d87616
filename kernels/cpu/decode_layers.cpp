// Every transformer block of one CPU decode step in one call (Python side: engine/cpu_decode.py).
//
// It calls the same kernels, with the same arguments and in the same order, as the per-op path that engine/model.py
// runs through engine.ops (rmsnorm, the fused bf16 or 8-bit GEMVs, rope, the KV-cache write, attention_decode, the
// router's top-k and softmax, moe), so its result is the same, bit for bit; the tests compare the two. What it saves
// is the ~10 Python-level op calls per block between those kernels. Right after a kernel has streamed megabytes of
// weights, the interpreter's and torch's dispatch state is out of the caches, and each such call took 4-8x its warm
// time (an add+RMSNorm call of a 2880-wide row: ~20 us warm, 50-100 us inside a decode step on AMD Zen 4): ~15 ms of
// a ~135 ms gpt-oss-20b step over 24 blocks.
//
// Per block (engine/model.py's _run_blocks and _attention_decode):
//   qkv = linear(normed)                           [B, q + 2kv]
//   q, k = rope(q), rope(k); v                     [B, heads, D]
//   the cache's row of each sequence <- k, v       (ring layers: row = position % window)
//   o = attention_decode(q, cache)                 [B, Hq, D]
//   x, normed = add_rmsnorm(x, linear(o), mlp norm)
//   weights, experts = softmax(top-k(linear(normed, gate)))
//   x, normed = add_rmsnorm(x, moe(normed), next block's norm, or the final norm)
#include <ATen/ops/softmax.h>
#include <ATen/ops/topk.h>

#include "common.h"

namespace GPTOSS_OP_NAMESPACE {
namespace {

// Tensors per block in decode_layers' `blocks` list, in this order. A bf16 projection's scales slot holds an empty
// tensor; an 8-bit one's weight slot holds its int8 values and the scales slot its bf16 scales (kernels/q8.py); a
// packed bf16 one's weight slot holds its uint8 data and the scales slot its int64 meta (kernels/bf16_packed.py).
enum BlockTensor : int64_t {
  kAttnNorm,
  kQkvWeight,
  kQkvScales,
  kQkvBias,
  kSinks,
  kOutWeight,
  kOutScales,
  kOutBias,
  kMlpNorm,
  kGateWeight,
  kGateBias,
  kMlp1Blocks,
  kMlp1Scales,
  kMlp1Bias,
  kMlp2Blocks,
  kMlp2Scales,
  kMlp2Bias,
  kTensorsPerBlock,
};

// engine.ops.cpu_linear for decode sizes: the bf16 GEMV over the checkpoint's rows or over packed ones, or the 8-bit
// GEMV.
at::Tensor project(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& scales, const at::Tensor& bias) {
  if (weight.scalar_type() == at::kByte) return bf16_packed_linear(x, weight, scales, bias, false);
  if (scales.numel() > 0) return q8_linear(x, weight, scales, bias, false);
  return bf16_linear(x, weight, bias, false);
}

at::Tensor decode_layers(const at::Tensor& x_in, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& slots,
                         const at::Tensor& positions, at::TensorList blocks, at::TensorList k_stores,
                         at::TensorList v_stores, at::IntArrayRef windows, const at::Tensor& final_norm, double eps,
                         int64_t heads, int64_t kv_heads, int64_t experts_per_token, double swiglu_limit,
                         double swiglu_alpha, double sm_scale) {
  const int64_t layers = static_cast<int64_t>(k_stores.size());
  TORCH_CHECK(static_cast<int64_t>(blocks.size()) == layers * kTensorsPerBlock && v_stores.size() == k_stores.size() &&
                  static_cast<int64_t>(windows.size()) == layers && layers > 0,
              "decode_layers needs ", static_cast<int64_t>(kTensorsPerBlock), " tensors, a K and a V store and a window ",
              "per block");
  TORCH_CHECK(x_in.dim() == 2 && x_in.is_contiguous(), "x must be a contiguous [B, H] tensor");
  TORCH_CHECK(slots.scalar_type() == at::kLong && positions.scalar_type() == at::kLong && slots.is_contiguous() &&
                  positions.is_contiguous() && slots.numel() == x_in.size(0) && positions.numel() == x_in.size(0),
              "slots and positions must be contiguous int64 [B]");
  const int64_t B = x_in.size(0);
  const int64_t* slot = slots.data_ptr<int64_t>();
  const int64_t* pos = positions.data_ptr<int64_t>();
  at::Tensor lengths = at::empty({B}, positions.options());  // attention_decode's: positions + 1
  for (int64_t b = 0; b < B; ++b) lengths.data_ptr<int64_t>()[b] = pos[b] + 1;
  const auto norm_scale = [&](int64_t layer) {
    return layer < layers ? blocks[layer * kTensorsPerBlock + kAttnNorm] : final_norm;
  };

  at::Tensor x = x_in;
  at::Tensor normed = std::get<1>(rmsnorm_op(x, std::nullopt, norm_scale(0), eps));
  for (int64_t layer = 0; layer < layers; ++layer) {
    const auto w = [&](BlockTensor which) -> const at::Tensor& { return blocks[layer * kTensorsPerBlock + which]; };
    const at::Tensor& k_store = k_stores[layer];
    const at::Tensor& v_store = v_stores[layer];
    TORCH_CHECK(k_store.dim() == 4 && k_store.is_contiguous() && v_store.is_contiguous() &&
                    v_store.sizes() == k_store.sizes() && k_store.scalar_type() == x.scalar_type() &&
                    v_store.scalar_type() == x.scalar_type() && k_store.size(2) == kv_heads,
                "block ", layer, ": the K/V stores must be contiguous [slots, rows, Hkv, D] tensors of x's dtype");
    const int64_t D = k_store.size(3);
    const int64_t rows = k_store.size(1);
    const int64_t window = windows[layer];

    const at::Tensor qkv = project(normed, w(kQkvWeight), w(kQkvScales), w(kQkvBias));  // [B, q + 2kv]
    // [B, q + 2kv] -> q [B, Hq, D], k and v [B, Hkv, D], each copied out contiguous (as rope's wrapper does).
    const at::Tensor q = rope_op(qkv.narrow(1, 0, heads * D).reshape({B, heads, D}).contiguous(), cos, sin);
    const at::Tensor k =
        rope_op(qkv.narrow(1, heads * D, kv_heads * D).reshape({B, kv_heads, D}).contiguous(), cos, sin);
    // KVCache.write_decode: each sequence's new row; v straight from its place in qkv's row.
    const int64_t row_bytes = kv_heads * D * static_cast<int64_t>(x.element_size());
    const char* v = static_cast<const char*>(qkv.data_ptr()) + (heads + kv_heads) * D * qkv.element_size();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t row = window > 0 ? pos[b] % window : pos[b];
      TORCH_CHECK(slot[b] >= 0 && slot[b] < k_store.size(0) && row >= 0 && row < rows, "block ", layer,
                  ": slot ", slot[b], " position ", pos[b], " is outside the cache");
      const int64_t offset = (slot[b] * rows + row) * row_bytes;
      std::memcpy(static_cast<char*>(k_store.data_ptr()) + offset, static_cast<const char*>(k.data_ptr()) + b * row_bytes,
                  row_bytes);
      std::memcpy(static_cast<char*>(v_store.data_ptr()) + offset, v + b * qkv.size(1) * qkv.element_size(),
                  row_bytes);
    }
    const at::Tensor o = attention_decode(q, k_store, v_store, w(kSinks), slots, lengths, window, window > 0, sm_scale);
    const at::Tensor attn = project(o.reshape({B, heads * D}), w(kOutWeight), w(kOutScales), w(kOutBias));
    std::tie(x, normed) = rmsnorm_op(x, attn, w(kMlpNorm), eps);

    // kernels.router.router_ref with the fused GEMV: top-k of the bf16 logits (sorted), softmax of them in fp32.
    const at::Tensor logits = bf16_linear(normed, w(kGateWeight), w(kGateBias), false);  // [B, E]
    const auto [top_values, top_indices] = at::topk(logits, experts_per_token, -1, true, true);
    const at::Tensor routing = at::softmax(top_values.to(at::kFloat), -1);
    const at::Tensor mixed = moe_mxfp4(normed, top_indices, routing, w(kMlp1Blocks), w(kMlp1Scales), w(kMlp1Bias),
                                       w(kMlp2Blocks), w(kMlp2Scales), w(kMlp2Bias), swiglu_limit, swiglu_alpha);
    std::tie(x, normed) = rmsnorm_op(x, mixed, norm_scale(layer + 1), eps);
  }
  return normed;
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("decode_layers(Tensor x, Tensor cos, Tensor sin, Tensor slots, Tensor positions, Tensor[] blocks, "
        "Tensor[] k_stores, Tensor[] v_stores, int[] windows, Tensor final_norm, float eps, int heads, int kv_heads, "
        "int experts_per_token, float swiglu_limit, float swiglu_alpha, float sm_scale) -> Tensor",
        &GPTOSS_OP_NAMESPACE::decode_layers);
}
