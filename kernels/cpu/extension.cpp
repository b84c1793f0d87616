// The fused CPU kernels' one translation unit, and the op namespace they register in.
//
// kernels/cpu_build.py compiles this file once per instruction-set level. The kernels are in their own files, each
// self-contained (it includes the headers it needs and registers its own ops with GPTOSS_LIBRARY_FRAGMENT), but they
// are compiled here as one unit: torch's headers, parsed once per unit, are most of the compile time (five units took
// about four times as long as one at -O3), and the first run of the app waits for this build.
#include "common.h"

#include <string>

namespace GPTOSS_OP_NAMESPACE {
namespace {

// The level this build was compiled for: cpu_build checks it against the level it asked for. The conditions are
// those that pick each code path (mxfp4_rows.h, gemv.cpp, attention.cpp).
std::string isa() {
#if defined(__AVX512F__)
  const std::string level = "avx512";
#elif defined(__AVX2__) && defined(__FMA__)
  const std::string level = "avx2";
#else
  const std::string level = "scalar";
#endif
#ifdef GPTOSS_BF16_DOT
  return level + "bf16";
#else
  return level;
#endif
}

// The bf16 GEMVs' prefetch distance (common.h), which kernels/cpu_build.py sets right after loading a variant.
void set_bf16_prefetch(int64_t bytes) {
  TORCH_CHECK(bytes >= 0 && bytes <= (int64_t{1} << 20), "the prefetch distance must be 0 to 1 MiB, got ", bytes);
  g_bf16_prefetch_bytes = bytes;
}
int64_t bf16_prefetch() { return g_bf16_prefetch_bytes; }

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

// torch.ops.gptoss_cpu_<level>[_<tag>]: isa() and the prefetch setting here, the kernels' ops from their files below.
GPTOSS_LIBRARY(m) {
  m.def("isa() -> str", &GPTOSS_OP_NAMESPACE::isa);
  m.def("set_bf16_prefetch(int bytes) -> ()", &GPTOSS_OP_NAMESPACE::set_bf16_prefetch);
  m.def("bf16_prefetch() -> int", &GPTOSS_OP_NAMESPACE::bf16_prefetch);
}

#include "attention.cpp"    // attention_decode
#include "attention_prefill.cpp"  // attention_prefill
#include "elementwise.cpp"  // rmsnorm, rope
#include "gemv.cpp"         // linear (MXFP4), bf16_linear
#include "gemv_bf16_packed.cpp"  // bf16_pack, bf16_unpack, bf16_packed_linear (bf16 weights in 12 bits)
#include "gemv_q8.cpp"      // q8_linear, q8_quantize (the opt-in 8-bit weights)
#include "moe.cpp"          // moe, moe_prefill
#include "decode_layers.cpp"  // decode_layers: every block of a decode step, from the kernels above
