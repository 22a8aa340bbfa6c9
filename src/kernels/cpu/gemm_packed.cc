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
// GCC 12's AVX-512 intrinsic headers trip -Wmaybe-uninitialized on their own undefined-vector
// idiom (_mm512_undefined_epi32); the warning is about the header, not this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/dtype.h"
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

// 16 weights as f32: a plain load, or bf16 widened (bf16 is the top half of an f32).
__attribute__((target("avx512f"))) inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
__attribute__((target("avx512f"))) inline __m512 load16(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}
inline float to_f32(float v) { return v; }
inline float to_f32(uint16_t v) { return bf16_to_f32(v); }

template <class W, int MR>
__attribute__((target("avx512f"))) void block_avx512(const float* x, int64_t ldx, const W* pa, int64_t k,
                                                     float* y, int64_t ldy, int64_t cols) {
  __m512 acc0[MR], acc1[MR];
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  const W* pb = pa + k * kPanel;  // second panel of the pair
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m512 w0 = load16(pa + kk * kPanel);
    const __m512 w1 = load16(pb + kk * kPanel);
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
template <class W, int MR>
void block_generic(const float* x, int64_t ldx, const W* pa, int64_t k, float* y, int64_t ldy, int64_t cols) {
  float acc[MR][kNr] = {};
  const W* pb = pa + k * kPanel;
  for (int64_t kk = 0; kk < k; ++kk) {
    const W* w0 = pa + kk * kPanel;
    const W* w1 = pb + kk * kPanel;
    for (int i = 0; i < MR; ++i) {
      const float xv = x[i * ldx + kk];
      for (int j = 0; j < kPanel; ++j) acc[i][j] += xv * to_f32(w0[j]);
      for (int j = 0; j < kPanel; ++j) acc[i][kPanel + j] += xv * to_f32(w1[j]);
    }
  }
  for (int i = 0; i < MR; ++i) std::memcpy(y + i * ldy, acc[i], sizeof(float) * std::min<int64_t>(cols, kNr));
}

template <class W>
using BlockFn = void (*)(const float*, int64_t, const W*, int64_t, float*, int64_t, int64_t);

// The kernel for an mr-row tile (the last tile of m may be short).
template <class W>
BlockFn<W> pick(bool avx512, int mr) {
#define NF_PICK(R) return avx512 ? block_avx512<W, R> : block_generic<W, R>
  switch (mr) {
    case 1: NF_PICK(1);
    case 2: NF_PICK(2);
    case 3: NF_PICK(3);
    case 4: NF_PICK(4);
    case 5: NF_PICK(5);
    case 6: NF_PICK(6);
    case 7: NF_PICK(7);
    default: NF_PICK(8);
  }
#undef NF_PICK
}

bool have_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

}  // namespace

int64_t packed_weight_floats(int64_t n, int64_t k) {
  NF_CHECK(n > 0 && k > 0) << "packed weight " << n << "x" << k;
  return padded_n(n) * k;
}

namespace {

template <class W, class Convert>
void pack_impl(const float* w, int64_t n, int64_t k, W* packed, Convert convert) {
  const int64_t np = padded_n(n);
  for (int64_t p = 0; p < np / kPanel; ++p) {
    W* dst = packed + p * k * kPanel;
    for (int64_t j = 0; j < kPanel; ++j) {
      const int64_t row = p * kPanel + j;
      for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + j] = row < n ? convert(w[row * k + kk]) : W{0};
    }
  }
}

template <class W>
void linear_packed_impl(const LinearParams& p, const float* x, const W* packed, const float* bias, float* y,
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
      const W* pa = packed + b * 2 * p.k * kPanel;
      const int64_t cols = std::min<int64_t>(kNr, p.n - b * kNr);
      for (int64_t i = 0; i < p.m; i += kMr) {
        const int mr = static_cast<int>(std::min<int64_t>(kMr, p.m - i));
        pick<W>(avx, mr)(x + i * ldx, ldx, pa, p.k, y + i * ldy + b * kNr, ldy, cols);
      }
    }
  });
  if (bias != nullptr) add_bias(y, bias, p.m, p.n, ldy);
}

}  // namespace

void pack_weight(const float* w, int64_t n, int64_t k, float* packed) {
  pack_impl(w, n, k, packed, [](float v) { return v; });
}

void pack_weight_bf16(const float* w, int64_t n, int64_t k, uint16_t* packed) {
  pack_impl(w, n, k, packed, [](float v) { return f32_to_bf16(v); });
}

void linear_packed(const LinearParams& p, const float* x, const float* packed, const float* bias, float* y,
                   ThreadPool* pool) {
  linear_packed_impl(p, x, packed, bias, y, pool);
}

void linear_packed_bf16(const LinearParams& p, const float* x, const uint16_t* packed, const float* bias, float* y,
                        ThreadPool* pool) {
  linear_packed_impl(p, x, packed, bias, y, pool);
}

}  // namespace nanoflow::cpu
