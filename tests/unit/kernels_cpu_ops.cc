// CPU ops against independent naive references written here in double precision (dense, unpaged,
// straight from the formulas of the HF modules), over several shapes. End-to-end agreement with
// transformers is tested in tests/model/model_golden.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <numeric>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "kernels/cpu/ops.h"

using namespace nanoflow;
using namespace nanoflow::cpu;

namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  // Inputs must vary (STYLE.md): a spread check guards against an all-zero generator bug.
  float mn = *std::min_element(v.begin(), v.end()), mx = *std::max_element(v.begin(), v.end());
  EXPECT_GT(mx - mn, 0.5f * scale);
  return v;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return static_cast<float>(m);
}

}  // namespace

TEST(KernelsCpu, LinearMatchesNaive) {
  ThreadPool pool(2);
  set_blas_threads(2);
  for (auto [m, n, k] : {std::tuple{1, 7, 5}, {3, 64, 48}, {17, 33, 129}}) {
    auto x = randn(m * k, 1), w = randn(n * k, 2), bias = randn(n, 3);
    std::vector<float> y(m * n);
    linear({.m = m, .n = n, .k = k}, x.data(), w.data(), bias.data(), y.data());
    std::vector<double> ref(m * n);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double s = bias[j];
        for (int c = 0; c < k; ++c) s += double(x[i * k + c]) * w[j * k + c];
        ref[i * n + j] = s;
      }
    EXPECT_LT(max_abs_diff(y, ref), 1e-4f) << m << "x" << n << "x" << k;
  }
}

TEST(KernelsCpu, LinearStridedAccumulate) {
  const int m = 4, n = 6, k = 8, ldx = 11, ldy = 9;
  auto x = randn(m * ldx, 4), w = randn(n * k, 5), y0 = randn(m * ldy, 6);
  auto y = y0;
  linear({.m = m, .n = n, .k = k, .ldx = ldx, .ldy = ldy, .accumulate = true}, x.data(), w.data(), nullptr, y.data());
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < ldy; ++j) {
      double s = y0[i * ldy + j];
      if (j < n)
        for (int c = 0; c < k; ++c) s += double(x[i * ldx + c]) * w[j * k + c];
      EXPECT_NEAR(y[i * ldy + j], s, 1e-4) << i << "," << j;
    }
}

TEST(KernelsCpu, EmbeddingGatherAndBadId) {
  const int vocab = 10, dim = 4;
  auto table = randn(vocab * dim, 7);
  std::vector<int32_t> ids{3, 0, 9, 3};
  std::vector<float> out(ids.size() * dim);
  embedding(table.data(), vocab, dim, ids.data(), ids.size(), out.data());
  for (size_t t = 0; t < ids.size(); ++t)
    for (int c = 0; c < dim; ++c) EXPECT_EQ(out[t * dim + c], table[ids[t] * dim + c]);
  std::vector<int32_t> bad{1, 10};
  try {
    embedding(table.data(), vocab, dim, bad.data(), bad.size(), out.data());
    FAIL() << "no error for id 10";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
  }
}

TEST(KernelsCpu, AddRmsNorm) {
  ThreadPool pool(2);
  const int rows = 5, dim = 96;
  const float eps = 1e-6f;
  auto res0 = randn(rows * dim, 8), add = randn(rows * dim, 9), w = randn(dim, 10);
  for (bool with_add : {false, true}) {
    auto res = res0;
    std::vector<float> out(rows * dim);
    add_rmsnorm({.rows = rows, .dim = dim, .eps = eps}, res.data(), with_add ? add.data() : nullptr, w.data(),
                out.data(), &pool);
    std::vector<double> ref(rows * dim), ref_res(rows * dim);
    for (int r = 0; r < rows; ++r) {
      double ss = 0;
      for (int c = 0; c < dim; ++c) {
        ref_res[r * dim + c] = double(res0[r * dim + c]) + (with_add ? add[r * dim + c] : 0.0);
        ss += ref_res[r * dim + c] * ref_res[r * dim + c];
      }
      const double inv = 1.0 / std::sqrt(ss / dim + eps);
      for (int c = 0; c < dim; ++c) ref[r * dim + c] = ref_res[r * dim + c] * inv * w[c];
    }
    EXPECT_LT(max_abs_diff(out, ref), 1e-5f);
    EXPECT_LT(max_abs_diff(res, ref_res), 1e-6f);
  }
}

TEST(KernelsCpu, SiluMulFusedLayout) {
  const int rows = 3, inter = 20;
  auto gu = randn(rows * 2 * inter, 11, 3.0f);
  std::vector<float> out(rows * inter);
  silu_mul(gu.data(), gu.data() + inter, out.data(), rows, inter, 2 * inter);
  std::vector<double> ref(rows * inter);
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < inter; ++i) {
      const double g = gu[r * 2 * inter + i], u = gu[r * 2 * inter + inter + i];
      ref[r * inter + i] = g / (1 + std::exp(-g)) * u;
    }
  EXPECT_LT(max_abs_diff(out, ref), 1e-5f);
}

TEST(KernelsCpu, SoftmaxAndLogSoftmax) {
  const int rows = 3, cols = 50;
  auto x = randn(rows * cols, 12, 5.0f);
  auto s = x, ls = x;
  softmax(s.data(), rows, cols);
  log_softmax(ls.data(), rows, cols);
  std::vector<double> rs(rows * cols), rls(rows * cols);
  for (int r = 0; r < rows; ++r) {
    double mx = -1e30, sum = 0;
    for (int c = 0; c < cols; ++c) mx = std::max(mx, double(x[r * cols + c]));
    for (int c = 0; c < cols; ++c) sum += std::exp(x[r * cols + c] - mx);
    for (int c = 0; c < cols; ++c) {
      rs[r * cols + c] = std::exp(x[r * cols + c] - mx) / sum;
      rls[r * cols + c] = x[r * cols + c] - mx - std::log(sum);
    }
  }
  EXPECT_LT(max_abs_diff(s, rs), 1e-6f);
  EXPECT_LT(max_abs_diff(ls, rls), 1e-5f);
}

// inv_freq and llama3 scaling from the formulas (HF _compute_llama3_parameters), in double.
static double ref_inv_freq(const RopeParams& p, int i) {
  double f = 1.0 / std::pow(double(p.theta), 2.0 * i / p.head_dim);
  if (p.type != RopeType::kLlama3) return f;
  const double wl = 2 * M_PI / f, lo = p.original_max_position / p.low_freq_factor,
               hi = p.original_max_position / p.high_freq_factor;
  if (wl < hi) return f;
  if (wl > lo) return f / p.factor;
  const double s = (p.original_max_position / wl - p.low_freq_factor) / (p.high_freq_factor - p.low_freq_factor);
  return (1 - s) * f / p.factor + s * f;
}

TEST(KernelsCpu, RopeDefaultAndLlama3) {
  for (RopeType type : {RopeType::kDefault, RopeType::kLlama3}) {
    RopeParams p{.head_dim = 32, .theta = 500000.0f, .type = type, .factor = 8.0f, .low_freq_factor = 1.0f,
                 .high_freq_factor = 4.0f, .original_max_position = 64};
    std::vector<float> inv(16);
    rope_inv_freq(p, inv.data());
    int scaled = 0, smoothed = 0;
    for (int i = 0; i < 16; ++i) {
      EXPECT_NEAR(inv[i] / ref_inv_freq(p, i), 1.0, 1e-5) << i;
      const double plain = 1.0 / std::pow(500000.0, 2.0 * i / 32);
      if (std::abs(inv[i] / plain - 0.125) < 1e-4) ++scaled;
      else if (std::abs(inv[i] / plain - 1.0) > 1e-4) ++smoothed;
    }
    if (type == RopeType::kLlama3) {  // the test shape reaches all three regions
      EXPECT_GT(scaled, 0);
      EXPECT_GT(smoothed, 0);
    }
    // Rotate a strided [n, heads, 32] buffer; compare to rotate_half in double.
    const int n = 4, heads = 3, ld = heads * 32 + 5;
    auto x0 = randn(n * ld, 13);
    auto x = x0;
    std::vector<int32_t> pos{0, 1, 17, 300};
    ThreadPool pool(2);
    rope(p, inv.data(), x.data(), n, heads, ld, pos.data(), &pool);
    for (int t = 0; t < n; ++t)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < 16; ++i) {
          const double a = double(pos[t]) * inv[i];
          const double x1 = x0[t * ld + h * 32 + i], x2 = x0[t * ld + h * 32 + 16 + i];
          EXPECT_NEAR(x[t * ld + h * 32 + i], x1 * std::cos(a) - x2 * std::sin(a), 2e-5);
          EXPECT_NEAR(x[t * ld + h * 32 + 16 + i], x2 * std::cos(a) + x1 * std::sin(a), 2e-5);
        }
    for (int t = 0; t < n; ++t)  // the padding after the heads is untouched
      for (int c = heads * 32; c < ld; ++c) EXPECT_EQ(x[t * ld + c], x0[t * ld + c]);
  }
}

// Paged attention over a mixed batch (a prefill from 0, a chunk after a cached prefix, decodes),
// with scattered page ids, vs dense causal attention computed from the unpaged K/V.
TEST(KernelsCpu, PagedAttentionMixedBatch) {
  const int heads = 6, kvh = 2, d = 16, group = heads / kvh, num_pages = 20;
  struct Seq { int cached, q; std::vector<int32_t> pages; };
  std::vector<Seq> seqs{{0, 21, {5, 2}}, {17, 9, {7, 0}}, {40, 1, {1, 9, 3}}, {0, 1, {11}}, {15, 1, {4}}};
  PagedKv kv;
  std::vector<float> kp(num_pages * 16 * kvh * d, 0.0f), vp(kp.size(), 0.0f);
  kv = {kp.data(), vp.data(), num_pages, 16, kvh, d};
  std::vector<int32_t> q_start{0}, kv_len, page_start{0}, page_ids;
  for (auto& s : seqs) {
    q_start.push_back(q_start.back() + s.q);
    kv_len.push_back(s.cached + s.q);
    for (int p : s.pages) page_ids.push_back(p);
    page_start.push_back(static_cast<int32_t>(page_ids.size()));
  }
  AttnBatch b{static_cast<int32_t>(seqs.size()), q_start.data(), kv_len.data(), page_start.data(), page_ids.data()};
  // Full K/V history per sequence; the cached prefix is written through a first batch.
  std::vector<std::vector<float>> K(seqs.size()), V(seqs.size());
  for (size_t s = 0; s < seqs.size(); ++s) {
    K[s] = randn(kv_len[s] * kvh * d, 100 + s);
    V[s] = randn(kv_len[s] * kvh * d, 200 + s);
    if (seqs[s].cached > 0) {
      std::vector<int32_t> qs{0, seqs[s].cached}, kl{seqs[s].cached}, ps{0, (int32_t)seqs[s].pages.size()};
      AttnBatch pre{1, qs.data(), kl.data(), ps.data(), seqs[s].pages.data()};
      kv_write(kv, pre, K[s].data(), V[s].data());
    }
  }
  const int T = q_start.back(), ldq = heads * d + 3;
  std::vector<float> k_new, v_new;
  for (size_t s = 0; s < seqs.size(); ++s) {
    k_new.insert(k_new.end(), K[s].begin() + seqs[s].cached * kvh * d, K[s].end());
    v_new.insert(v_new.end(), V[s].begin() + seqs[s].cached * kvh * d, V[s].end());
  }
  kv_write(kv, b, k_new.data(), v_new.data());
  auto q = randn(T * ldq, 300);
  std::vector<float> out(T * heads * d);
  ThreadPool pool(2);
  paged_attention({.num_heads = heads}, kv, b, q.data(), ldq, out.data(), &pool);

  std::vector<double> ref(out.size());
  const double scale = 1.0 / std::sqrt(double(d));
  for (size_t s = 0; s < seqs.size(); ++s)
    for (int i = 0; i < seqs[s].q; ++i) {
      const int t = q_start[s] + i, pos = seqs[s].cached + i;
      for (int h = 0; h < heads; ++h) {
        const int g = h / group;
        std::vector<double> sc(pos + 1);
        double mx = -1e30, sum = 0;
        for (int j = 0; j <= pos; ++j) {
          double dot = 0;
          for (int c = 0; c < d; ++c) dot += double(q[t * ldq + h * d + c]) * K[s][(j * kvh + g) * d + c];
          sc[j] = dot * scale;
          mx = std::max(mx, sc[j]);
        }
        for (auto& v : sc) sum += (v = std::exp(v - mx));
        for (int c = 0; c < d; ++c) {
          double acc = 0;
          for (int j = 0; j <= pos; ++j) acc += sc[j] / sum * V[s][(j * kvh + g) * d + c];
          ref[(t * heads + h) * d + c] = acc;
        }
      }
    }
  EXPECT_LT(max_abs_diff(out, ref), 2e-5f);

  // copy_page duplicates a page (K and V) exactly.
  kv_copy_page(kv, 5, 19);
  for (int i = 0; i < 16 * kvh * d; ++i) {
    EXPECT_EQ(kp[19 * 16 * kvh * d + i], kp[5 * 16 * kvh * d + i]);
    EXPECT_EQ(vp[19 * 16 * kvh * d + i], vp[5 * 16 * kvh * d + i]);
  }
}

TEST(KernelsCpu, PagedAttentionRejectsBadPages) {
  std::vector<float> kp(2 * 16 * 4), vp(kp.size());
  PagedKv kv{kp.data(), vp.data(), 2, 16, 1, 4};
  std::vector<int32_t> q_start{0, 1}, kv_len{1}, page_start{0, 1}, page_ids{2};
  AttnBatch b{1, q_start.data(), kv_len.data(), page_start.data(), page_ids.data()};
  std::vector<float> k(4, 1.0f);
  EXPECT_THROW(kv_write(kv, b, k.data(), k.data()), Error);
  kv_len[0] = 17;  // needs 2 pages, has 1
  page_ids[0] = 0;
  EXPECT_THROW(kv_write(kv, b, k.data(), k.data()), Error);
}

TEST(KernelsCpu, MoeRouteRenormalizedTopK) {
  const int rows = 6, E = 8, K = 2;
  auto logits = randn(rows * E, 14, 2.0f);
  std::vector<int32_t> ex(rows * K);
  std::vector<float> wt(rows * K);
  moe_route(logits.data(), rows, E, K, ex.data(), wt.data());
  for (int r = 0; r < rows; ++r) {
    std::vector<double> p(E);
    double mx = -1e30, sum = 0;
    for (int e = 0; e < E; ++e) mx = std::max(mx, double(logits[r * E + e]));
    for (int e = 0; e < E; ++e) sum += (p[e] = std::exp(logits[r * E + e] - mx));
    for (auto& v : p) v /= sum;
    std::vector<int> idx(E);
    std::iota(idx.begin(), idx.end(), 0);
    std::sort(idx.begin(), idx.end(), [&](int a, int b) { return p[a] > p[b]; });
    const double top = p[idx[0]] + p[idx[1]];
    EXPECT_EQ(ex[r * K], idx[0]);
    EXPECT_EQ(ex[r * K + 1], idx[1]);
    EXPECT_NEAR(wt[r * K], p[idx[0]] / top, 1e-6);
    EXPECT_NEAR(wt[r * K + 1], p[idx[1]] / top, 1e-6);
  }
}

TEST(KernelsCpu, ThreadPoolCoversRangeAndRethrows) {
  ThreadPool pool(3);
  std::vector<int> hit(1000, 0);
  pool.parallel_for(1000, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i) hit[i]++;
  });
  for (int h : hit) EXPECT_EQ(h, 1);
  EXPECT_THROW(pool.parallel_for(10, [](int64_t a, int64_t) {
    if (a > 0) throw Error("boom");
  }), Error);
  // Still usable after an exception.
  int64_t total = 0;
  std::mutex mu;
  pool.parallel_for(100, [&](int64_t a, int64_t b) {
    std::lock_guard<std::mutex> l(mu);
    total += b - a;
  });
  EXPECT_EQ(total, 100);
  // Many short jobs back to back (the decode-step pattern): no lost wake-up, no chunk run twice.
  std::vector<int64_t> acc(4, 0);
  for (int job = 0; job < 2000; ++job) {
    pool.parallel_for(3, [&](int64_t a, int64_t b) {
      for (int64_t i = a; i < b; ++i) acc[i] += job;
    });
  }
  const int64_t expect = int64_t{2000} * 1999 / 2;
  EXPECT_EQ(acc[0], expect);
  EXPECT_EQ(acc[1], expect);
  EXPECT_EQ(acc[2], expect);
  EXPECT_EQ(acc[3], 0);
}

TEST(KernelsCpu, LinearPackedMatchesNaive) {
  ThreadPool pool(2);
  // n not a multiple of 32, m across the 8-row tile edge, strided x and y.
  for (auto [m, n, k] : {std::tuple{1, 7, 5}, {3, 64, 48}, {17, 33, 129}, {9, 100, 64}, {40, 576, 96}}) {
    const int ldx = k + 3, ldy = n + 2;
    auto x = randn(m * ldx, 21), w = randn(n * k, 22), bias = randn(n, 23);
    std::vector<float> packed(packed_weight_floats(n, k));
    pack_weight(w.data(), n, k, packed.data());
    std::vector<float> y(m * ldy, -7.0f);
    linear_packed({.m = m, .n = n, .k = k, .ldx = ldx, .ldy = ldy}, x.data(), packed.data(), bias.data(), y.data(),
                  &pool);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < ldy; ++j) {
        if (j >= n) {  // padding columns of y are not written
          EXPECT_EQ(y[i * ldy + j], -7.0f);
          continue;
        }
        double s = bias[j];
        for (int c = 0; c < k; ++c) s += double(x[i * ldx + c]) * w[j * k + c];
        EXPECT_NEAR(y[i * ldy + j], s, 1e-4) << m << "x" << n << "x" << k << " at " << i << "," << j;
      }
  }
}

TEST(KernelsCpu, LinearPackedBf16MatchesNaiveOnRoundedWeights) {
  ThreadPool pool(2);
  for (auto [m, n, k] : {std::tuple{1, 7, 5}, {9, 100, 64}, {33, 70, 40}}) {
    auto x = randn(m * k, 31), w = randn(n * k, 32);
    std::vector<uint16_t> packed(packed_weight_floats(n, k));
    pack_weight_bf16(w.data(), n, k, packed.data());
    std::vector<float> y(m * n);
    linear_packed_bf16({.m = m, .n = n, .k = k}, x.data(), packed.data(), nullptr, y.data(), &pool);
    std::vector<double> ref(m * n);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double s = 0;
        for (int c = 0; c < k; ++c) s += double(x[i * k + c]) * bf16_to_f32(f32_to_bf16(w[j * k + c]));
        ref[i * n + j] = s;
      }
    EXPECT_LT(max_abs_diff(y, ref), 1e-4f) << m << "x" << n << "x" << k;
  }
}
