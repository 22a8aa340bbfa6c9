// Checked entry point of rms_norm (kernel and launcher: norm.cu).
#include "kernels/cuda/norm.h"

#include "check_util.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

void rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.rows >= 0) << "rows " << p.rows;
  NF_CHECK_INPUT(p.hidden > 0 && p.hidden % 8 == 0 && p.hidden <= 32768)
      << "hidden " << p.hidden << " must be a positive multiple of 8, at most 32768";
  NF_CHECK_INPUT(p.eps > 0.f) << "eps " << p.eps;
  NF_CHECK_PTR(p.x);
  NF_CHECK_PTR(p.weight);
  NF_CHECK_PTR(p.out);
  NF_CHECK_ALIGNED(p.x);
  NF_CHECK_ALIGNED(p.weight);
  NF_CHECK_ALIGNED(p.out);
  if (p.residual != nullptr) {
    NF_CHECK_INPUT(p.row_index == nullptr) << "a residual add with a row gather is not supported";
    NF_CHECK_PTR(p.residual_out);
    NF_CHECK_ALIGNED(p.residual);
    NF_CHECK_ALIGNED(p.residual_out);
    NF_CHECK_INPUT(static_cast<const void*>(p.residual_out) != static_cast<const void*>(p.x))
        << "residual_out must not alias x";
  }
  NF_CUDA_CHECK(launch_rms_norm(p, stream)) << "rms_norm rows=" << p.rows << " hidden=" << p.hidden;
}

}  // namespace nanoflow::cuda
