// bf16 weights held in 12 bits each, losslessly, for the decode GEMV (Python side: kernels/bf16_packed.py, which
// documents the format and has the torch reference decoder).
//
// Why: CPU decode streams every dense weight once per token, at the memory's pace, so its time is the bytes it reads.
// A bf16 word is [sign, 8 exponent bits, 7 mantissa bits]; its low byte (exponent bit 0 + mantissa) is close to
// random, but its high byte (sign + exponent bits 7..1) takes few values in a row of trained or random weights. Each
// row keeps a table of its 16 most frequent high bytes and stores a 4-bit index per weight next to the low byte: 1.5
// bytes per weight instead of 2. A word whose high byte is not in the table is an exception, kept whole in a list
// and written over the decoded group (a 2880-wide row of normal weights has about one in 80 rows with one).
//
// The kernels are bf16_gemv.h's, fed groups of 32 decoded words, so the GEMV's result is bf16_linear's bit for bit.
//
// Layout of one packed weight (one uint8 tensor; `meta` = [N, K, E], int64):
//   N rows of 16 + 48 * K/32 bytes: the row's table (16 high bytes), then per group of 32 weights a 48-byte record:
//     bytes 0-31: the low bytes, in "lane order" (below); bytes 32-47: the table indices, 4 bits each, byte i's low
//     nibble for lane position i and its high nibble for position 16 + i.
//     Lane order: position p holds word p for p < 8, word p + 8 for 8 <= p < 16, word p - 8 for 16 <= p < 24 and
//     word p for p >= 24, so that interleaving the low and high bytes 128 bits at a time (vpunpcklbw / vpunpckhbw)
//     gives words 0-15 and 16-31 in order.
//   then (N + 1) int64 row starts into the exception list, E int32 columns and E uint16 words.
#include "bf16_gemv.h"

namespace GPTOSS_OP_NAMESPACE {
namespace {

constexpr int64_t kPackedGroupBytes = 48;
constexpr int64_t kPackedTableBytes = 16;

// Word j of a group sits at lane position lane_position(j) (see the layout above).
constexpr int lane_position(int j) { return j < 8 ? j : j < 16 ? j + 8 : j < 24 ? j - 8 : j; }

struct PackedLayout {
  int64_t N, K, E;
  int64_t G() const { return K / 32; }
  int64_t row_bytes() const { return kPackedTableBytes + kPackedGroupBytes * G(); }
  int64_t starts_offset() const { return N * row_bytes(); }  // a multiple of 16
  int64_t cols_offset() const { return starts_offset() + (N + 1) * 8; }
  int64_t words_offset() const { return cols_offset() + E * 4; }
  int64_t total_bytes() const { return words_offset() + E * 2; }
};

PackedLayout packed_layout(const at::Tensor& data, const at::Tensor& meta) {
  TORCH_CHECK(meta.device().is_cpu() && meta.scalar_type() == at::kLong && meta.numel() == 3 && meta.is_contiguous(),
              "meta must be a CPU int64 tensor [N, K, E]");
  const int64_t* m = meta.data_ptr<int64_t>();
  const PackedLayout layout{m[0], m[1], m[2]};
  TORCH_CHECK(layout.N >= 0 && layout.K > 0 && layout.K % 32 == 0 && layout.E >= 0, "bad packed shape N=", layout.N,
              " K=", layout.K, " E=", layout.E);
  TORCH_CHECK(data.device().is_cpu() && data.scalar_type() == at::kByte && data.dim() == 1 && data.is_contiguous() &&
                  data.numel() == layout.total_bytes(),
              "packed data must be a contiguous CPU uint8 tensor of ", layout.total_bytes(), " bytes");
  return layout;
}

// One row's groups, decoded in order (the exception cursor moves forward only; bf16_gemv.h asks for each group once).
struct PackedBf16Row {
  const uint8_t* table;
  const uint8_t* groups;
  const int32_t* exc_col;
  const uint16_t* exc_word;
  int64_t exc_begin;  // the row's exceptions in the list: [exc_begin, exc_end), by column
  int64_t exc_end;
  int64_t exc_next;   // the next one a group may need
  int64_t exc_group;  // its group (past the row's last group when there is none): one compare per group
#if defined(__AVX2__)
  __m256i table2;  // the table in both 128-bit lanes, for vpshufb
#endif

  PackedBf16Row(const uint8_t* row, const int32_t* cols, const uint16_t* words, int64_t begin, int64_t end)
      : table(row),
        groups(row + kPackedTableBytes),
        exc_col(cols),
        exc_word(words),
        exc_begin(begin),
        exc_end(end),
        exc_next(begin),
        exc_group(begin < end ? cols[begin] / 32 : INT64_MAX) {
#if defined(__AVX2__)
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table));
    table2 = _mm256_set_m128i(t, t);
#endif
  }

  // Group g's words patched in place where exceptions fall in it (g == exc_group).
  void patch(int64_t g, uint16_t* words) {
    for (; exc_next < exc_end && exc_col[exc_next] < 32 * (g + 1); ++exc_next) {
      words[exc_col[exc_next] - 32 * g] = exc_word[exc_next];
    }
    exc_group = exc_next < exc_end ? exc_col[exc_next] / 32 : INT64_MAX;
  }

#if defined(__AVX2__)
  // Words 0-15 and 16-31 of group g: the 4-bit indices become high bytes through the table (vpshufb), then low and
  // high bytes interleave into words.
  void group256(int64_t g, __m256i& a, __m256i& b) {
    const uint8_t* rec = groups + kPackedGroupBytes * g;
    prefetch_ahead(rec, g_bf16_prefetch_bytes);
    // [16 low nibbles | 16 high nibbles] as 32 byte indices, in lane order: the 16 index bytes in both lanes (a
    // broadcast load, no shuffle), the upper lane's dwords shifted right by 4 (a byte's high nibble drops to its low
    // half; what comes in from the next byte is masked off).
    const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(rec + 32)));
    const __m256i index = _mm256_and_si256(_mm256_srlv_epi32(both, _mm256_set_epi32(4, 4, 4, 4, 0, 0, 0, 0)),
                                           _mm256_set1_epi8(0x0F));
    const __m256i high = _mm256_shuffle_epi8(table2, index);
    const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(rec));
    a = _mm256_unpacklo_epi8(low, high);
    b = _mm256_unpackhi_epi8(low, high);
    if (__builtin_expect(g == exc_group, 0)) {
      alignas(32) uint16_t words[32];
      _mm256_store_si256(reinterpret_cast<__m256i*>(words), a);
      _mm256_store_si256(reinterpret_cast<__m256i*>(words + 16), b);
      patch(g, words);
      a = _mm256_load_si256(reinterpret_cast<const __m256i*>(words));
      b = _mm256_load_si256(reinterpret_cast<const __m256i*>(words + 16));
    }
  }
#endif
#if defined(__AVX512F__)
  __m512i group512(int64_t g) {
    __m256i a, b;
    group256(g, a, b);
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
  }
#endif
  void group_words(int64_t g, uint16_t* out) {
    const uint8_t* rec = groups + kPackedGroupBytes * g;
    prefetch_ahead(rec, g_bf16_prefetch_bytes);
    for (int j = 0; j < 32; ++j) {
      const int p = lane_position(j);
      const int index = p < 16 ? rec[32 + p] & 0x0F : rec[32 + p - 16] >> 4;
      out[j] = static_cast<uint16_t>(table[index] << 8 | rec[p]);
    }
    if (g == exc_group) patch(g, out);
  }
  // One word, for bf16_gemv.h's tail past the last full group (which a packed row, K % 32 == 0, never has).
  uint16_t word(int64_t k) const {
    for (int64_t e = exc_begin; e < exc_end; ++e)
      if (exc_col[e] == k) return exc_word[e];
    const uint8_t* rec = groups + kPackedGroupBytes * (k / 32);
    const int p = lane_position(static_cast<int>(k % 32));
    const int index = p < 16 ? rec[32 + p] & 0x0F : rec[32 + p - 16] >> 4;
    return static_cast<uint16_t>(table[index] << 8 | rec[p]);
  }
};

struct PackedBf16Rows {
  static constexpr bool kDecodes = true;
  const uint8_t* data;
  const int64_t* starts;
  const int32_t* cols;
  const uint16_t* words;
  int64_t N;
  int64_t K;
  int64_t row_bytes;
  PackedBf16Row row(int64_t n) const {
    return PackedBf16Row(data + n * row_bytes, cols, words, starts[n], starts[n + 1]);
  }
  // Rows n0..n1 as bf16 bits, K apart, into out.
  void unpack(int64_t n0, int64_t n1, uint16_t* out) const {
    const int64_t G = K / 32;
    for (int64_t n = n0; n < n1; ++n) {
      PackedBf16Row r = row(n);
      uint16_t* d = out + (n - n0) * K;
      for (int64_t g = 0; g < G; ++g) {
#if defined(__AVX2__)
        __m256i a, b;
        r.group256(g, a, b);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 32 * g), a);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + 32 * g + 16), b);
#else
        r.group_words(g, d + 32 * g);
#endif
      }
    }
  }
};

PackedBf16Rows packed_rows(const at::Tensor& data, const at::Tensor& meta) {
  const PackedLayout layout = packed_layout(data, meta);
  const uint8_t* base = data.data_ptr<uint8_t>();
  return PackedBf16Rows{base,
                        reinterpret_cast<const int64_t*>(base + layout.starts_offset()),
                        reinterpret_cast<const int32_t*>(base + layout.cols_offset()),
                        reinterpret_cast<const uint16_t*>(base + layout.words_offset()),
                        layout.N,
                        layout.K,
                        layout.row_bytes()};
}

// A row's table: its 16 most frequent high bytes, ties to the smaller byte (so packing is deterministic); a row with
// fewer distinct high bytes fills the rest with unused ones. Returns how many of the row's words miss the table.
// Four histograms, so that runs of equal high bytes (most of a row falls in a few) do not wait on one counter.
int64_t choose_table(const uint16_t* w, int64_t K, uint8_t* table) {
  int32_t counts[4][256] = {};
  int64_t k = 0;
  for (; k + 4 <= K; k += 4) {
    for (int c = 0; c < 4; ++c) ++counts[c][w[k + c] >> 8];
  }
  for (; k < K; ++k) ++counts[0][w[k] >> 8];
  int64_t count[256];
  for (int b = 0; b < 256; ++b) count[b] = int64_t{counts[0][b]} + counts[1][b] + counts[2][b] + counts[3][b];
  int order[256];
  for (int b = 0; b < 256; ++b) order[b] = b;
  std::stable_sort(order, order + 256, [&](int x, int y) { return count[x] > count[y]; });
  int64_t hits = 0;
  for (int i = 0; i < 16; ++i) {
    table[i] = static_cast<uint8_t>(order[i]);
    hits += count[order[i]];
  }
  return K - hits;
}

// One group of 32 words into its 48-byte record, given the row's table and code[b] (b's table index, or -1). The
// exceptions' words get index 0: the exception list replaces them.
inline void pack_group(const uint16_t* w, const uint8_t* table, const int8_t* code, uint8_t* rec) {
#if defined(__AVX2__)
  // packus over [words 0-15] and [words 16-31] gives bytes in lane order: [0-7, 16-23 | 8-15, 24-31].
  const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
  const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 16));
  const __m256i byte_mask = _mm256_set1_epi16(0xFF);
  const __m256i low = _mm256_packus_epi16(_mm256_and_si256(a, byte_mask), _mm256_and_si256(b, byte_mask));
  const __m256i high = _mm256_packus_epi16(_mm256_srli_epi16(a, 8), _mm256_srli_epi16(b, 8));
  __m256i index = _mm256_setzero_si256();
  for (int i = 1; i < 16; ++i) {  // entry 0 is index 0 already
    const __m256i hit = _mm256_cmpeq_epi8(high, _mm256_set1_epi8(static_cast<char>(table[i])));
    index = _mm256_or_si256(index, _mm256_and_si256(hit, _mm256_set1_epi8(static_cast<char>(i))));
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(rec), low);
  const __m128i nibbles = _mm_or_si128(_mm256_castsi256_si128(index),
                                       _mm_slli_epi16(_mm256_extracti128_si256(index, 1), 4));  // indices < 16
  _mm_storeu_si128(reinterpret_cast<__m128i*>(rec + 32), nibbles);
  (void)code;
#else
  std::memset(rec + 32, 0, 16);
  for (int j = 0; j < 32; ++j) {
    const int p = lane_position(j);
    rec[p] = static_cast<uint8_t>(w[j] & 0xFF);
    const int index = std::max<int>(0, code[w[j] >> 8]);
    rec[32 + (p & 15)] |= static_cast<uint8_t>(p < 16 ? index : index << 4);
  }
  (void)table;
#endif
}

// bf16 [N, K] (K a multiple of 32) -> (data, meta) as laid out above. Two parallel passes over the rows: each row's
// table and exception count, then (after a prefix sum gives the exceptions' places) its table, records and
// exceptions, written in place.
std::tuple<at::Tensor, at::Tensor> bf16_pack(const at::Tensor& weight) {
  TORCH_CHECK(weight.device().is_cpu() && weight.scalar_type() == at::kBFloat16 && weight.dim() == 2 &&
                  weight.is_contiguous(),
              "weight must be a contiguous CPU bfloat16 [N, K] tensor");
  const int64_t N = weight.size(0);
  const int64_t K = weight.size(1);
  TORCH_CHECK(K > 0 && K % 32 == 0, "packing needs K to be a positive multiple of 32, got ", K);
  const uint16_t* w = reinterpret_cast<const uint16_t*>(weight.data_ptr<c10::BFloat16>());
  std::vector<uint8_t> tables(static_cast<size_t>(N * kPackedTableBytes));
  std::vector<int64_t> starts(static_cast<size_t>(N + 1), 0);
  at::parallel_for(0, N, 64, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) starts[n + 1] = choose_table(w + n * K, K, tables.data() + n * kPackedTableBytes);
  });
  for (int64_t n = 0; n < N; ++n) starts[n + 1] += starts[n];
  const PackedLayout layout{N, K, starts[N]};
  at::Tensor data = at::empty({layout.total_bytes()}, weight.options().dtype(at::kByte));
  uint8_t* out = data.data_ptr<uint8_t>();
  std::memcpy(out + layout.starts_offset(), starts.data(), starts.size() * sizeof(int64_t));
  auto* cols = reinterpret_cast<int32_t*>(out + layout.cols_offset());
  auto* words = reinterpret_cast<uint16_t*>(out + layout.words_offset());
  const int64_t G = layout.G();
  at::parallel_for(0, N, 64, [&](int64_t n0, int64_t n1) {
    int8_t code[256];
    for (int64_t n = n0; n < n1; ++n) {
      const uint16_t* r = w + n * K;
      uint8_t* row = out + n * layout.row_bytes();
      const uint8_t* table = tables.data() + n * kPackedTableBytes;
      std::memcpy(row, table, kPackedTableBytes);
      std::memset(code, -1, sizeof code);
      for (int i = 0; i < 16; ++i) code[table[i]] = static_cast<int8_t>(i);
      for (int64_t g = 0; g < G; ++g) pack_group(r + 32 * g, table, code, row + kPackedTableBytes + kPackedGroupBytes * g);
      for (int64_t k = 0, e = starts[n]; e < starts[n + 1]; ++k) {
        if (code[r[k] >> 8] < 0) {
          cols[e] = static_cast<int32_t>(k);
          words[e] = r[k];
          ++e;
        }
      }
    }
  });
  at::Tensor meta = at::empty({3}, weight.options().dtype(at::kLong));
  meta.data_ptr<int64_t>()[0] = N;
  meta.data_ptr<int64_t>()[1] = K;
  meta.data_ptr<int64_t>()[2] = layout.E;
  return {data, meta};
}

// Rows r0..r1 of a packed weight as bf16 [r1 - r0, K] (the prefill path multiplies such blocks with BLAS).
at::Tensor bf16_unpack(const at::Tensor& data, const at::Tensor& meta, int64_t r0, int64_t r1) {
  const PackedBf16Rows rows = packed_rows(data, meta);
  TORCH_CHECK(0 <= r0 && r0 <= r1 && r1 <= rows.N, "rows ", r0, "..", r1, " outside 0..", rows.N);
  at::Tensor out = at::empty({r1 - r0, rows.K}, data.options().dtype(at::kBFloat16));
  auto* dst = reinterpret_cast<uint16_t*>(out.data_ptr<c10::BFloat16>());
  at::parallel_for(r0, r1, 16, [&](int64_t n0, int64_t n1) { rows.unpack(n0, n1, dst + (n0 - r0) * rows.K); });
  return out;
}

// bf16_linear's result, bit for bit, from the packed rows.
at::Tensor bf16_packed_linear(const at::Tensor& x, const at::Tensor& data, const at::Tensor& meta,
                              const std::optional<at::Tensor>& bias, bool fp32_out) {
  return bf16_gemv(x, packed_rows(data, meta), bias, fp32_out);
}

}  // namespace
}  // namespace GPTOSS_OP_NAMESPACE

GPTOSS_LIBRARY_FRAGMENT(m) {
  m.def("bf16_pack(Tensor weight) -> (Tensor, Tensor)", &GPTOSS_OP_NAMESPACE::bf16_pack);
  m.def("bf16_unpack(Tensor data, Tensor meta, int r0, int r1) -> Tensor", &GPTOSS_OP_NAMESPACE::bf16_unpack);
  m.def("bf16_packed_linear(Tensor x, Tensor data, Tensor meta, Tensor? bias, bool fp32_out=False) -> Tensor",
        &GPTOSS_OP_NAMESPACE::bf16_packed_linear);
}
