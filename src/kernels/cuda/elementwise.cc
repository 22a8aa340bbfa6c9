// Checked entry points of the elementwise ops (kernels and launchers: elementwise.cu).
#include "kernels/cuda/elementwise.h"

#include "check_util.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

void silu_mul(const SiluMulParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.tokens >= 0 && p.inter > 0 && p.inter % 8 == 0)
      << "silu_mul tokens=" << p.tokens << " inter=" << p.inter << " (multiple of 8)";
  NF_CHECK_INPUT(p.cta_budget >= 0) << "cta_budget " << p.cta_budget;
  NF_CHECK_PTR(p.gate_up);
  NF_CHECK_PTR(p.out);
  NF_CHECK_ALIGNED(p.gate_up);
  NF_CHECK_ALIGNED(p.out);
  NF_CUDA_CHECK(launch_silu_mul(p, stream)) << "silu_mul";
}

void add_bias(const AddBiasParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.rows >= 0 && p.cols > 0 && p.cols % 8 == 0)
      << "add_bias rows=" << p.rows << " cols=" << p.cols << " (multiple of 8)";
  NF_CHECK_INPUT(p.cta_budget >= 0) << "cta_budget " << p.cta_budget;
  NF_CHECK_PTR(p.x);
  NF_CHECK_PTR(p.bias);
  NF_CHECK_ALIGNED(p.x);
  NF_CHECK_ALIGNED(p.bias);
  NF_CUDA_CHECK(launch_add_bias(p, stream)) << "add_bias";
}

void add(const AddParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.n >= 0 && p.n % 8 == 0) << "add n=" << p.n << " (multiple of 8)";
  NF_CHECK_INPUT(p.cta_budget >= 0) << "cta_budget " << p.cta_budget;
  NF_CHECK_PTR(p.x);
  NF_CHECK_PTR(p.y);
  NF_CHECK_ALIGNED(p.x);
  NF_CHECK_ALIGNED(p.y);
  NF_CUDA_CHECK(launch_add(p, stream)) << "add";
}

void embedding(const EmbeddingParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.tokens >= 0 && p.vocab > 0 && p.hidden > 0 && p.hidden % 8 == 0)
      << "embedding tokens=" << p.tokens << " vocab=" << p.vocab << " hidden=" << p.hidden;
  NF_CHECK_INPUT(p.cta_budget >= 0) << "cta_budget " << p.cta_budget;
  NF_CHECK_PTR(p.ids);
  NF_CHECK_PTR(p.table);
  NF_CHECK_PTR(p.out);
  NF_CHECK_ALIGNED(p.table);
  NF_CHECK_ALIGNED(p.out);
  NF_CUDA_CHECK(launch_embedding(p, stream)) << "embedding";
}

}  // namespace nanoflow::cuda
