// Paged KV write and causal GQA attention over the paged cache (f32, HF eager semantics).
// GCC 12's AVX-512 intrinsic headers trip -Wmaybe-uninitialized on their own idiom.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace nanoflow::cpu {
namespace {

// Address of (position j of sequence s, kv head h) in a pool.
inline int64_t kv_offset(const PagedKv& kv, const AttnBatch& b, int32_t s, int32_t j, int32_t h) {
  const int32_t page = b.page_ids[b.page_start[s] + j / kv.page_size];
  const int32_t slot = j % kv.page_size;
  return ((static_cast<int64_t>(page) * kv.page_size + slot) * kv.num_kv_heads + h) * kv.head_dim;
}

// Dot product and axpy over one head vector. AVX-512 versions (head_dim a multiple of 16, all
// real models) and portable ones; chosen once per call.
using DotFn = float (*)(const float*, const float*, int32_t);
using AxpyFn = void (*)(float, const float*, float*, int32_t);

float dot_generic(const float* a, const float* b, int32_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int32_t c = 0;
  for (; c + 4 <= d; c += 4) {
    s0 += a[c] * b[c];
    s1 += a[c + 1] * b[c + 1];
    s2 += a[c + 2] * b[c + 2];
    s3 += a[c + 3] * b[c + 3];
  }
  for (; c < d; ++c) s0 += a[c] * b[c];
  return (s0 + s1) + (s2 + s3);
}

void axpy_generic(float w, const float* x, float* y, int32_t d) {
  for (int32_t c = 0; c < d; ++c) y[c] += w * x[c];
}

__attribute__((target("avx512f"))) float dot_avx512(const float* a, const float* b, int32_t d) {
  __m512 acc = _mm512_setzero_ps();
  for (int32_t c = 0; c < d; c += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + c), _mm512_loadu_ps(b + c), acc);
  return _mm512_reduce_add_ps(acc);
}

__attribute__((target("avx512f"))) void axpy_avx512(float w, const float* x, float* y, int32_t d) {
  const __m512 wv = _mm512_set1_ps(w);
  for (int32_t c = 0; c < d; c += 16)
    _mm512_storeu_ps(y + c, _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + c), _mm512_loadu_ps(y + c)));
}

void check_kv(const PagedKv& kv) {
  NF_CHECK(kv.k_pool != nullptr && kv.v_pool != nullptr && kv.num_pages > 0 && kv.page_size > 0 &&
           kv.num_kv_heads > 0 && kv.head_dim > 0)
      << "bad PagedKv";
}

// Pages named by the batch must exist and cover kv_len (a corrupt plan must not write out of
// bounds; BatchPlan::validate checks the same, this is the op's own guard).
void check_batch(const PagedKv& kv, const AttnBatch& b) {
  NF_CHECK(b.num_seqs >= 0 && b.q_start && b.kv_len && b.page_start && b.page_ids);
  for (int32_t s = 0; s < b.num_seqs; ++s) {
    const int32_t q = b.q_start[s + 1] - b.q_start[s];
    NF_CHECK(q > 0 && b.kv_len[s] >= q) << "sequence " << s << " q_len " << q << " kv_len " << b.kv_len[s];
    const int64_t pages = b.page_start[s + 1] - b.page_start[s];
    NF_CHECK_GE(pages * kv.page_size, int64_t{b.kv_len[s]}) << "sequence " << s << " lacks pages";
    for (int32_t i = b.page_start[s]; i < b.page_start[s + 1]; ++i)
      NF_CHECK(b.page_ids[i] >= 0 && b.page_ids[i] < kv.num_pages) << "page id " << b.page_ids[i];
  }
}

}  // namespace

void kv_write(const PagedKv& kv, const AttnBatch& b, const float* k, const float* v, int64_t ld) {
  check_kv(kv);
  check_batch(kv, b);
  const int64_t row = int64_t{kv.num_kv_heads} * kv.head_dim;
  if (ld == 0) ld = row;
  for (int32_t s = 0; s < b.num_seqs; ++s) {
    const int32_t q0 = b.q_start[s], q1 = b.q_start[s + 1];
    const int32_t first_pos = b.kv_len[s] - (q1 - q0);
    for (int32_t t = q0; t < q1; ++t) {
      // All kv heads of one token are contiguous in a slot: one copy per token.
      const int64_t off = kv_offset(kv, b, s, first_pos + (t - q0), 0);
      std::memcpy(kv.k_pool + off, k + t * ld, sizeof(float) * row);
      std::memcpy(kv.v_pool + off, v + t * ld, sizeof(float) * row);
    }
  }
}

void paged_attention(const AttnParams& p, const PagedKv& kv, const AttnBatch& b, const float* q, int64_t ldq,
                     float* out, ThreadPool* pool) {
  check_kv(kv);
  check_batch(kv, b);
  NF_CHECK(p.num_heads > 0 && p.num_heads % kv.num_kv_heads == 0)
      << "heads " << p.num_heads << " kv heads " << kv.num_kv_heads;
  const int32_t d = kv.head_dim;
  const int32_t group = p.num_heads / kv.num_kv_heads;
  const float scale = p.scale != 0.0f ? p.scale : 1.0f / std::sqrt(static_cast<float>(d));
  if (ldq == 0) ldq = int64_t{p.num_heads} * d;
  const int32_t num_tokens = b.num_seqs ? b.q_start[b.num_seqs] : 0;
  int32_t max_kv = 0;
  for (int32_t s = 0; s < b.num_seqs; ++s) max_kv = std::max(max_kv, b.kv_len[s]);

  const bool vec = d % 16 == 0 && __builtin_cpu_supports("avx512f");
  const DotFn dot = vec ? dot_avx512 : dot_generic;
  const AxpyFn axpy = vec ? axpy_avx512 : axpy_generic;
  // Work item = (token, kv head): the `group` query heads sharing a KV head read it together.
  const int64_t items = int64_t{num_tokens} * kv.num_kv_heads;
  // Work ~ query heads x context x head_dim x (QK + PV), bounded above by max_kv per row.
  const int64_t work = int64_t{num_tokens} * p.num_heads * max_kv * d * 2;
  parallel_for(pool_for(pool, work), items, [&](int64_t i0, int64_t i1) {
    std::vector<float> scores(static_cast<size_t>(max_kv) * group);
    std::vector<float> acc(static_cast<size_t>(d) * group);
    for (int64_t it = i0; it < i1; ++it) {
      const int32_t t = static_cast<int32_t>(it / kv.num_kv_heads);
      const int32_t kh = static_cast<int32_t>(it % kv.num_kv_heads);
      const int32_t s = static_cast<int32_t>(std::upper_bound(b.q_start, b.q_start + b.num_seqs + 1, t) - b.q_start) - 1;
      const int32_t q_len = b.q_start[s + 1] - b.q_start[s];
      const int32_t pos = b.kv_len[s] - q_len + (t - b.q_start[s]);
      const int32_t n = pos + 1;  // causal: positions [0, pos]
      const float* qh = q + t * ldq + int64_t{kh} * group * d;
      // scores[g * n + j] = q_g · k_j * scale
      for (int32_t j = 0; j < n; ++j) {
        const float* kj = kv.k_pool + kv_offset(kv, b, s, j, kh);
        for (int32_t g = 0; g < group; ++g) scores[static_cast<size_t>(g) * n + j] = dot(qh + int64_t{g} * d, kj, d) * scale;
      }
      for (int32_t g = 0; g < group; ++g) {
        float* sc = scores.data() + static_cast<size_t>(g) * n;
        const float mx = *std::max_element(sc, sc + n);
        float sum = 0;
        for (int32_t j = 0; j < n; ++j) {
          sc[j] = std::exp(sc[j] - mx);
          sum += sc[j];
        }
        const float inv = 1.0f / sum;
        for (int32_t j = 0; j < n; ++j) sc[j] *= inv;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int32_t j = 0; j < n; ++j) {
        const float* vj = kv.v_pool + kv_offset(kv, b, s, j, kh);
        for (int32_t g = 0; g < group; ++g)
          axpy(scores[static_cast<size_t>(g) * n + j], vj, acc.data() + static_cast<size_t>(g) * d, d);
      }
      float* o = out + (int64_t{t} * p.num_heads + int64_t{kh} * group) * d;
      std::memcpy(o, acc.data(), sizeof(float) * d * group);
    }
  });
}

void kv_copy_page(const PagedKv& kv, int32_t src, int32_t dst) {
  check_kv(kv);
  NF_CHECK(src >= 0 && src < kv.num_pages && dst >= 0 && dst < kv.num_pages) << "copy page " << src << " -> " << dst;
  if (src == dst) return;
  const int64_t page = int64_t{kv.page_size} * kv.num_kv_heads * kv.head_dim;
  std::memcpy(kv.k_pool + dst * page, kv.k_pool + src * page, sizeof(float) * page);
  std::memcpy(kv.v_pool + dst * page, kv.v_pool + src * page, sizeof(float) * page);
}

}  // namespace nanoflow::cpu
