// Checked entry point of sample (kernel: sampling.cu).
#include "kernels/cuda/sampling.h"

#include "check_util.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

void sample(const SamplingParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.rows >= 0 && p.rows <= (1 << 30)) << "sampling rows " << p.rows;
  NF_CHECK_INPUT(p.vocab > 0) << "sampling vocab " << p.vocab;
  NF_CHECK_INPUT(p.num_logprobs >= 0 && p.num_logprobs <= kMaxLogprobs)
      << "num_logprobs " << p.num_logprobs << " (at most " << kMaxLogprobs << ")";
  NF_CHECK_PTR(p.logits);
  NF_CHECK_PTR(p.temperature);
  NF_CHECK_PTR(p.seed);
  NF_CHECK_PTR(p.step);
  NF_CHECK_PTR(p.sampled);
  if (p.num_logprobs > 0) {
    NF_CHECK_PTR(p.top_ids);
    NF_CHECK_PTR(p.top_logprobs);
  }
  if (p.hist_start != nullptr) {
    NF_CHECK_PTR(p.hist_token);
    NF_CHECK_PTR(p.hist_count);
  }
  NF_CUDA_CHECK(launch_sampling(p, stream)) << "sampling rows=" << p.rows;
}

}  // namespace nanoflow::cuda
