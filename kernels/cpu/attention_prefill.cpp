// Prefill attention: every query of a chunk against its visible keys, flash-style (Python wrapper:
// kernels/cpu_mxfp4.py, attention_prefill; the CPU backend's Ops.attention).
//
// attention_ref (kernels/attention.py) materialises fp32 scores [Hkv, G, T, S], masks them, appends the sink column
// and takes a softmax: about ten passes over a T x S x Hq tensor (67 MB per layer at 512 tokens and 64 heads), and a
// sliding layer scores every key only to mask all but 128 of them. Here a work item is one KV head and a tile of
// queries (the G query heads of each token share the head's keys). It walks the keys in blocks of kKeyBlock, keeps
// each query row's running max, denominator and output in fp32 (online softmax), and when the key positions ascend
// (they do in the model: the cache history, then the chunk's own keys) it visits only the blocks the tile can see.
// The sink joins the denominator at the end. Scores, softmax and P.V are fp32 like the reference; the sums are taken
// in another order (blocks, running rescaling), so results agree with it to fp32 rounding, not bit for bit.
#include "common.h"
#include "vec8.h"

namespace GPTOSS_OP_NAMESPACE {
namespace {

constexpr int64_t kKeyBlock = 32;
// Query rows (tokens x the G heads of a KV head) per work item: 24 rows keep the tile's queries, scores and outputs
// (24 x (D + 32 + D) floats, 15 KB at D = 64) in L1 while a key block streams past.
constexpr int64_t kTileRows = 24;

// c[i][0 .. 8 NC) (+)= sum over k < depth of a[i][k] * b[k][0 .. 8 NC) for MR rows; a rows lda apart, b rows ldb
// apart, c rows ldc apart. Scores are q . K^T with K transposed (b = keys, k = head dims); P.V is p . V (b = values,
// k = keys).
template <int MR, int NC>
inline void rows_times(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t depth, float* c, int64_t ldc,
                       bool accumulate) {
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[MR][NC];
  for (int i = 0; i < MR; ++i) {
    for (int v = 0; v < NC; ++v) {
      acc[i][v] = accumulate ? _mm256_loadu_ps(c + i * ldc + 8 * v) : _mm256_setzero_ps();
    }
  }
  for (int64_t k = 0; k < depth; ++k) {
    __m256 bv[NC];
    for (int v = 0; v < NC; ++v) bv[v] = _mm256_loadu_ps(b + k * ldb + 8 * v);
    for (int i = 0; i < MR; ++i) {
      const __m256 av = _mm256_broadcast_ss(a + i * lda + k);
      for (int v = 0; v < NC; ++v) acc[i][v] = _mm256_fmadd_ps(av, bv[v], acc[i][v]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int v = 0; v < NC; ++v) _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
  }
#else
  for (int i = 0; i < MR; ++i) {
    float acc[8 * NC];
    for (int n = 0; n < 8 * NC; ++n) acc[n] = accumulate ? c[i * ldc + n] : 0.0f;
    for (int64_t k = 0; k < depth; ++k) {
      const float av = a[i * lda + k];
      for (int n = 0; n < 8 * NC; ++n) acc[n] += av * b[k * ldb + n];
    }
    std::memcpy(c + i * ldc, acc, sizeof acc);
  }
#endif
}

// rows_times over any row count (pairs, then one) and a width of 8 * nc columns, nc any positive count.
inline void rows_times_any(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t depth, float* c,
                           int64_t ldc, int64_t rows, int64_t nc, bool accumulate) {
  for (int64_t v0 = 0; v0 < nc; v0 += 4) {
    const int64_t width = std::min<int64_t>(4, nc - v0);
    for (int64_t i = 0; i < rows; i += 2) {
      const bool pair = i + 1 < rows;
      const float* ai = a + i * lda;
      const float* bv = b + 8 * v0;
      float* ci = c + i * ldc + 8 * v0;
#define GPTOSS_ROWS_TIMES(NC)                                             \
  if (pair) {                                                             \
    rows_times<2, NC>(ai, lda, bv, ldb, depth, ci, ldc, accumulate);      \
  } else {                                                                \
    rows_times<1, NC>(ai, lda, bv, ldb, depth, ci, ldc, accumulate);      \
  }
      switch (width) {
        case 4: GPTOSS_ROWS_TIMES(4) break;
        case 3: GPTOSS_ROWS_TIMES(3) break;
        case 2: GPTOSS_ROWS_TIMES(2) break;
        default: GPTOSS_ROWS_TIMES(1) break;
      }
#undef GPTOSS_ROWS_TIMES
    }
  }
}

// p[j] = exp(s[j] - m) for the kKeyBlock scores of a row, 0 where s[j] is -inf (a key the query cannot see); returns
// their sum.
inline float exp_row(float* s, float m) {
#if defined(__AVX2__) && defined(__FMA__)
  const __m256 mv = _mm256_set1_ps(m);
  const __m256 neg_inf = _mm256_set1_ps(-INFINITY);
  __m256 sum = _mm256_setzero_ps();
  for (int64_t j = 0; j < kKeyBlock; j += 8) {
    const __m256 v = _mm256_loadu_ps(s + j);
    const __m256 hidden = _mm256_cmp_ps(v, neg_inf, _CMP_EQ_OQ);
    const __m256 p = _mm256_andnot_ps(hidden, exp8(_mm256_sub_ps(v, mv)));
    _mm256_storeu_ps(s + j, p);
    sum = _mm256_add_ps(sum, p);
  }
  return hsum8(sum);
#else
  float sum = 0.0f;
  for (int64_t j = 0; j < kKeyBlock; ++j) {
    s[j] = s[j] == -INFINITY ? 0.0f : std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
#endif
}

struct PrefillArgs {
  int64_t T, S, Hq, Hkv, G, D;
  const int64_t* q_pos;
  const int64_t* k_pos;
  int64_t window;
  float sm_scale;
  const float* sinks;
  bool sorted;  // k_pos ascends: each tile visits only the key range it can see
};

inline bool visible(int64_t kp, int64_t qp, int64_t window) {
  return kp >= 0 && kp <= qp && (window <= 0 || kp > qp - window);
}

// kt: keys transposed, [Hkv][D][Sp] fp32 (zero padded past S); vf: values [Hkv][S][D] fp32.
template <typename T>
void attention_prefill_impl(const PrefillArgs& a, const T* q, const float* kt, int64_t Sp, const float* vf, T* out) {
  const int64_t tile_tokens = std::max<int64_t>(1, kTileRows / a.G);
  const int64_t tiles = (a.T + tile_tokens - 1) / tile_tokens;
  const int64_t items = a.Hkv * tiles;
  const int64_t D = a.D;
  const int64_t nc = D / 8;  // D % 8 == 0 (checked by the caller)
  std::atomic<int64_t> next{0};
  const int64_t workers = std::min<int64_t>(at::get_num_threads(), items);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    const int64_t rows_max = tile_tokens * a.G;
    std::vector<float> qf(static_cast<size_t>(rows_max * D));
    std::vector<float> s(static_cast<size_t>(rows_max * kKeyBlock));
    std::vector<float> o(static_cast<size_t>(rows_max * D));
    std::vector<float> m(static_cast<size_t>(rows_max));
    std::vector<float> l(static_cast<size_t>(rows_max));
    for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < items;
         item = next.fetch_add(1, std::memory_order_relaxed)) {
      const int64_t h = item % a.Hkv;
      const int64_t t0 = (item / a.Hkv) * tile_tokens;
      const int64_t tokens = std::min(tile_tokens, a.T - t0);
      const int64_t rows = tokens * a.G;
      // Row r = (token t0 + r / G, query head h * G + r % G); qf [rows][D] in fp32.
      int64_t q_min = a.q_pos[t0], q_max = a.q_pos[t0];
      for (int64_t t = 0; t < tokens; ++t) {
        q_min = std::min(q_min, a.q_pos[t0 + t]);
        q_max = std::max(q_max, a.q_pos[t0 + t]);
        const T* src = q + ((t0 + t) * a.Hq + h * a.G) * D;
        for (int64_t i = 0; i < a.G * D; ++i) qf[t * a.G * D + i] = static_cast<float>(src[i]);
      }
      std::fill(o.begin(), o.begin() + rows * D, 0.0f);
      std::fill(m.begin(), m.begin() + rows, -INFINITY);
      std::fill(l.begin(), l.begin() + rows, 0.0f);
      int64_t lo = 0, hi = a.S;
      if (a.sorted) {
        const int64_t first_seen = a.window > 0 ? std::max<int64_t>(0, q_min - a.window + 1) : 0;
        lo = std::lower_bound(a.k_pos, a.k_pos + a.S, first_seen) - a.k_pos;
        hi = std::upper_bound(a.k_pos, a.k_pos + a.S, q_max) - a.k_pos;
      }
      const float* kth = kt + h * D * Sp;
      const float* vh = vf + h * a.S * D;
      for (int64_t j0 = lo; j0 < hi; j0 += kKeyBlock) {
        const int64_t keys = std::min(kKeyBlock, hi - j0);
        // Scores of the block: [rows][kKeyBlock] = qf . kt[:, j0 .. j0 + 32) (columns past `keys` are masked below).
        rows_times_any(qf.data(), D, kth + j0, Sp, D, s.data(), kKeyBlock, rows, kKeyBlock / 8, false);
        bool any = false;
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t qp = a.q_pos[t0 + r / a.G];
          float* sr = s.data() + r * kKeyBlock;
          float block_max = -INFINITY;
          for (int64_t j = 0; j < kKeyBlock; ++j) {
            if (j < keys && visible(a.k_pos[j0 + j], qp, a.window)) {
              sr[j] *= a.sm_scale;
              block_max = std::max(block_max, sr[j]);
            } else {
              sr[j] = -INFINITY;
            }
          }
          if (block_max == -INFINITY) {  // this query sees no key of the block: it adds nothing
            std::fill(sr, sr + kKeyBlock, 0.0f);
            continue;
          }
          any = true;
          const float m_new = std::max(m[r], block_max);
          const float correction = std::exp(m[r] - m_new);  // 0 for the first visible block (m = -inf)
          l[r] = l[r] * correction + exp_row(sr, m_new);
          if (correction != 1.0f) {
            float* orow = o.data() + r * D;
            for (int64_t d = 0; d < D; ++d) orow[d] *= correction;
          }
          m[r] = m_new;
        }
        if (any) rows_times_any(s.data(), kKeyBlock, vh + j0 * D, D, keys, o.data(), D, rows, nc, true);
      }
      // The sink: one more denominator term exp(sink - max), no value.
      for (int64_t r = 0; r < rows; ++r) {
        const float sink = a.sinks[h * a.G + r % a.G];
        const float m_final = std::max(m[r], sink);
        const float keep = std::exp(m[r] - m_final);  // 0 when no key was visible
        const float scale = keep / (l[r] * keep + std::exp(sink - m_final));
        T* dst = out + ((t0 + r / a.G) * a.Hq + h * a.G + r % a.G) * D;
        for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<T>(o[r * D + d] * scale);
      }
    }
  });
}

template <typename T>
at::Tensor attention_prefill_typed(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, PrefillArgs args) {
  const int64_t S = args.S, Hkv = args.Hkv, D = args.D;
  const int64_t Sp = ((S + 7) / 8) * 8 + kKeyBlock;  // a block starting at any key reads 32 columns
  std::vector<float> kt(static_cast<size_t>(Hkv * D * Sp), 0.0f);
  std::vector<float> vf(static_cast<size_t>(Hkv * S * D));
  const T* kp = k.data_ptr<T>();
  const T* vp = v.data_ptr<T>();
  at::parallel_for(0, Hkv, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t j = 0; j < S; ++j) {
        const T* krow = kp + (j * Hkv + h) * D;
        const T* vrow = vp + (j * Hkv + h) * D;
        for (int64_t d = 0; d < D; ++d) {
          kt[(h * D + d) * Sp + j] = static_cast<float>(krow[d]);
          vf[(h * S + j) * D + d] = static_cast<float>(vrow[d]);
        }
      }
    }
  });
  at::Tensor out = at::empty({args.T, args.Hq, D}, q.options());
  attention_prefill_impl<T>(args, q.data_ptr<T>(), kt.data(), Sp, vf.data(), out.data_ptr<T>());
  return out;
}

at::Tensor attention_prefill(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& sinks,
                             const at::Tensor& q_pos, const at::Tensor& k_pos, int64_t window, double sm_scale) {
  TORCH_CHECK(q.device().is_cpu() && q.dim() == 3 && q.is_contiguous(), "q must be a contiguous CPU [T, Hq, D] tensor");
  TORCH_CHECK(k.dim() == 3 && k.is_contiguous() && v.sizes() == k.sizes() && v.is_contiguous(),
              "k and v must be contiguous [S, Hkv, D] tensors of one shape");
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "q, k and v must share a dtype");
  TORCH_CHECK(q.scalar_type() == at::kFloat || q.scalar_type() == at::kBFloat16, "q must be float32 or bfloat16");
  PrefillArgs args{};
  args.T = q.size(0);
  args.Hq = q.size(1);
  args.D = q.size(2);
  args.S = k.size(0);
  args.Hkv = k.size(1);
  TORCH_CHECK(k.size(2) == args.D && args.Hkv > 0 && args.Hq % args.Hkv == 0, "head shapes do not fit: q ", q.sizes(),
              ", k ", k.sizes());
  TORCH_CHECK(args.D % 8 == 0, "head_dim must be a multiple of 8, got ", args.D);
  args.G = args.Hq / args.Hkv;
  TORCH_CHECK(sinks.scalar_type() == at::kFloat && sinks.is_contiguous() && sinks.numel() == args.Hq,
              "sinks must be contiguous float32 [Hq]");
  TORCH_CHECK(q_pos.scalar_type() == at::kLong && q_pos.is_contiguous() && q_pos.numel() == args.T &&
                  k_pos.scalar_type() == at::kLong && k_pos.is_contiguous() && k_pos.numel() == args.S,
              "q_pos [T] and k_pos [S] must be contiguous int64");
  args.q_pos = q_pos.data_ptr<int64_t>();
  args.k_pos = k_pos.data_ptr<int64_t>();
  args.window = window;
  args.sm_scale = static_cast<float>(sm_scale);
  args.sinks = sinks.data_ptr<float>();
  args.sorted = std::is_sorted(args.k_pos, args.k_pos + args.S);
  if (args.T == 0) return at::empty({0, args.Hq, args.D}, q.options());
  if (q.scalar_type() == at::kFloat) return attention_prefill_typed<float>(q, k, v, args);
  return attention_prefill_typed<c10::BFloat16>(q, k, v, args);
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("attention_prefill(Tensor q, Tensor k, Tensor v, Tensor sinks, Tensor q_pos, Tensor k_pos, int window, "
        "float sm_scale) -> Tensor",
        &GPTOSS_OP_NAMESPACE::attention_prefill);
}
