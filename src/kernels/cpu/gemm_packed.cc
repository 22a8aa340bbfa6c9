// Packed-weight GEMM for the CPU model: y[m, n] = x[m, k] · w[n, k]^T with w packed once at load.
//
// Why not OpenBLAS here: the model's GEMMs have small m (a decode batch is 1-64 rows) and a large
// weight. sgemm re-packs the whole weight on every call, which on this class of machine cost as
// much time as the arithmetic (measured: ~40% of a 32-row decode step in sgemm_incopy). Packing
// once at load and streaming the panels makes every step read each weight exactly once, for any m.
//
// Packed layout (floats): panel p holds output rows [16p, 16p+16) of w, transposed:
//   packed[p][kk][j] = w[16p + j][kk]      p < n_pad/16, kk < k, j < 16
// n_pad = n rounded up to 32 (extra rows zero), so panels come in pairs: the AVX-512 micro-kernel
// computes an 8-row x 32-column block of y with 16 accumulators, one broadcast of x per row and two
// panel loads per kk.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace nanoflow::cpu {
namespace {

constexpr int64_t kPanel = 16;   // output columns per panel
constexpr int64_t kNr = 32;      // columns per micro-kernel block (2 panels)
constexpr int kMr = 8;           // rows per micro-kernel block

int64_t padded_n(int64_t n) { return (n + kNr - 1) / kNr * kNr; }

// Stores `cols` (<= 16) values of v at y.
template <class V>
inline void store_cols(float* y, const V& v, int64_t cols) {
  if (cols >= kPanel) {
    std::memcpy(y, &v, sizeof(float) * kPanel);
  } else if (cols > 0) {
    std::memcpy(y, &v, sizeof(float) * cols);
  }
}

template <int MR>
__attribute__((target("avx512f"))) void block_avx512(const float* x, int64_t ldx, const float* pa, int64_t k,
                                                     float* y, int64_t ldy, int64_t cols) {
  __m512 acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  const float* pb = pa + k * kPanel;  // second panel of the pair
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m512 w0 = _mm512_loadu_ps(pa + kk * kPanel);
    const __m512 w1 = _mm512_loadu_ps(pb + kk * kPanel);
    for (int i = 0; i < MR; ++i) {
      const __m512 xv = _mm512_set1_ps(x[i * ldx + kk]);
      acc0[i] = _mm512_fmadd_ps(xv, w0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(xv, w1, acc1[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    store_cols(y + i * ldy, acc0[i], cols);
    store_cols(y + i * ldy + kPanel, acc1[i], cols - kPanel);
  }
}

// Portable version of the same block (plain loops, no FMA contraction assumed).
template <int MR>
void block_generic(const float* x, int64_t ldx, const float* pa, int64_t k, float* y, int64_t ldy, int64_t cols) {
  float acc[MR][kNr] = {};
  const float* pb = pa + k * kPanel;
  for (int64_t kk = 0; kk < k; ++kk) {
    const float* w0 = pa + kk * kPanel;
    const float* w1 = pb + kk * kPanel;
    for (int i = 0; i < MR; ++i) {
      const float xv = x[i * ldx + kk];
      for (int j = 0; j < kPanel; ++j) acc[i][j] += xv * w0[j];
      for (int j = 0; j < kPanel; ++j) acc[i][kPanel + j] += xv * w1[j];
    }
  }
  for (int i = 0; i < MR; ++i) std::memcpy(y + i * ldy, acc[i], sizeof(float) * std::min<int64_t>(cols, kNr));
}

using BlockFn = void (*)(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t);

template <template <int> class Sel>
BlockFn pick(int mr) {
  switch (mr) {
    case 1: return Sel<1>::fn;
    case 2: return Sel<2>::fn;
    case 3: return Sel<3>::fn;
    case 4: return Sel<4>::fn;
    case 5: return Sel<5>::fn;
    case 6: return Sel<6>::fn;
    case 7: return Sel<7>::fn;
    default: return Sel<8>::fn;
  }
}
template <int MR> struct Avx512Sel { static constexpr BlockFn fn = block_avx512<MR>; };
template <int MR> struct GenericSel { static constexpr BlockFn fn = block_generic<MR>; };

bool have_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

}  // namespace

int64_t packed_weight_floats(int64_t n, int64_t k) {
  NF_CHECK(n > 0 && k > 0) << "packed weight " << n << "x" << k;
  return padded_n(n) * k;
}

void pack_weight(const float* w, int64_t n, int64_t k, float* packed) {
  const int64_t np = padded_n(n);
  for (int64_t p = 0; p < np / kPanel; ++p) {
    float* dst = packed + p * k * kPanel;
    for (int64_t j = 0; j < kPanel; ++j) {
      const int64_t row = p * kPanel + j;
      if (row < n) {
        const float* src = w + row * k;
        for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + j] = src[kk];
      } else {
        for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + j] = 0.0f;
      }
    }
  }
}

void linear_packed(const LinearParams& p, const float* x, const float* packed, const float* bias, float* y,
                   ThreadPool* pool) {
  NF_CHECK(p.m >= 0 && p.n > 0 && p.k > 0) << "linear_packed m=" << p.m << " n=" << p.n << " k=" << p.k;
  NF_CHECK(!p.accumulate) << "linear_packed does not accumulate";
  if (p.m == 0) return;
  const int64_t ldx = p.ldx ? p.ldx : p.k;
  const int64_t ldy = p.ldy ? p.ldy : p.n;
  NF_CHECK(ldx >= p.k && ldy >= p.n) << "linear_packed strides";
  const int64_t blocks_n = padded_n(p.n) / kNr;
  const bool avx = have_avx512();
  // Threads split the columns (each weight byte is read by one thread); every thread walks all
  // rows, so a block of panels stays in its core's cache while the row tiles reuse it.
  parallel_for(pool, blocks_n, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const float* pa = packed + b * 2 * p.k * kPanel;
      const int64_t cols = std::min<int64_t>(kNr, p.n - b * kNr);
      for (int64_t i = 0; i < p.m; i += kMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kMr, p.m - i));
        const BlockFn fn = avx ? pick<Avx512Sel>(mr) : pick<GenericSel>(mr);
        fn(x + i * ldx, ldx, pa, p.k, y + i * ldy + b * kNr, ldy, cols);
      }
    }
  });
  if (bias != nullptr) add_bias(y, bias, p.m, p.n, ldy);
}

}  // namespace nanoflow::cpu
