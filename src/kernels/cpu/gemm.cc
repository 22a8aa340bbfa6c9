// GEMMs through OpenBLAS (f32). Torch Linear weights are [out, in] row-major, so y = x·w^T is
// sgemm(RowMajor, NoTrans, Trans).
#include <cblas.h>

#include <cctype>

#include "core/error.h"
#include "kernels/cpu/ops.h"

namespace nanoflow::cpu {

void set_blas_threads(int n) {
  NF_CHECK_GT(n, 0);
  openblas_set_num_threads(n);
}

std::string blas_core_name() {
  const char* n = openblas_get_corename();
  return n ? n : "";
}

std::string blas_better_coretype() {
  std::string core = blas_core_name();
  for (auto& ch : core) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (core != "prescott" && core != "core2" && core != "nehalem") return "";
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

void linear(const LinearParams& p, const float* x, const float* w, const float* bias, float* y) {
  NF_CHECK(p.m >= 0 && p.n > 0 && p.k > 0) << "linear m=" << p.m << " n=" << p.n << " k=" << p.k;
  if (p.m == 0) return;
  const int64_t ldx = p.ldx ? p.ldx : p.k;
  const int64_t ldy = p.ldy ? p.ldy : p.n;
  NF_CHECK(ldx >= p.k && ldy >= p.n) << "linear strides ldx=" << ldx << " ldy=" << ldy;
  // blasint is 32-bit in the Debian OpenBLAS build: keep every size and stride in range.
  constexpr int64_t kMax = 0x7fffffff;
  NF_CHECK(p.m <= kMax && p.n <= kMax && p.k <= kMax && ldx <= kMax && ldy <= kMax) << "linear too large";
  if (p.m == 1 && !p.accumulate) {
    // Decode of one token: GEMV streams w once; sgemm would first pack (copy) all of w.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(p.n), static_cast<blasint>(p.k), 1.0f, w,
                static_cast<blasint>(p.k), x, 1, 0.0f, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(p.m), static_cast<blasint>(p.n),
              static_cast<blasint>(p.k), 1.0f, x, static_cast<blasint>(ldx), w, static_cast<blasint>(p.k),
              p.accumulate ? 1.0f : 0.0f, y, static_cast<blasint>(ldy));
  }
  if (bias != nullptr) add_bias(y, bias, p.m, p.n, ldy);
}

}  // namespace nanoflow::cpu
