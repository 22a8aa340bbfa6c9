// Row-wise and elementwise ops: embedding gather, residual add + RMSNorm, bias, SwiGLU, softmax.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace nanoflow::cpu {

void embedding(const float* table, int64_t vocab, int64_t dim, const int32_t* ids, int64_t n, float* out) {
  NF_CHECK(vocab > 0 && dim > 0 && n >= 0);
  for (int64_t t = 0; t < n; ++t) {
    const int32_t id = ids[t];
    NF_CHECK_INPUT(id >= 0 && id < vocab) << "token id " << id << " outside vocabulary of " << vocab;
    std::memcpy(out + t * dim, table + static_cast<int64_t>(id) * dim, sizeof(float) * dim);
  }
}

void add_rmsnorm(const RmsNormParams& p, float* residual, const float* add, const float* weight, float* out,
                 ThreadPool* pool) {
  NF_CHECK(p.rows >= 0 && p.dim > 0);
  NF_CHECK(out != residual) << "add_rmsnorm: out must not alias residual";
  const int64_t d = p.dim;
  parallel_for(pool_for(pool, p.rows * d * 4), p.rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float* h = residual + r * d;
      if (add != nullptr) {
        const float* a = add + r * d;
        for (int64_t i = 0; i < d; ++i) h[i] += a[i];
      }
      // Sum of squares in double: the f32 torch reduction is pairwise; double keeps us within
      // ~1 ulp of it without copying its order.
      double ss = 0.0;
      for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(h[i]) * h[i];
      const float inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(d)) + p.eps);
      float* o = out + r * d;
      for (int64_t i = 0; i < d; ++i) o[i] = weight[i] * (h[i] * inv);
    }
  });
}

void add_bias(float* x, const float* bias, int64_t rows, int64_t cols, int64_t ld) {
  if (ld == 0) ld = cols;
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * ld;
    for (int64_t c = 0; c < cols; ++c) row[c] += bias[c];
  }
}

void silu_mul(const float* gate, const float* up, float* out, int64_t rows, int64_t inter, int64_t ld_in,
              ThreadPool* pool) {
  NF_CHECK(rows >= 0 && inter > 0);
  if (ld_in == 0) ld_in = inter;
  parallel_for(pool_for(pool, rows * inter * 8), rows, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* g = gate + r * ld_in;
      const float* u = up + r * ld_in;
      float* o = out + r * inter;
      for (int64_t i = 0; i < inter; ++i) o[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    }
  });
}

void softmax(float* x, int64_t rows, int64_t cols) {
  NF_CHECK(rows >= 0 && cols > 0);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    const float mx = *std::max_element(row, row + cols);
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      row[c] = std::exp(row[c] - mx);
      sum += row[c];
    }
    const float inv = static_cast<float>(1.0 / sum);
    for (int64_t c = 0; c < cols; ++c) row[c] *= inv;
  }
}

void log_softmax(float* x, int64_t rows, int64_t cols) {
  NF_CHECK(rows >= 0 && cols > 0);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * cols;
    const float mx = *std::max_element(row, row + cols);
    double sum = 0.0;
    for (int64_t c = 0; c < cols; ++c) sum += std::exp(static_cast<double>(row[c] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    for (int64_t c = 0; c < cols; ++c) row[c] -= lse;
  }
}

}  // namespace nanoflow::cpu
