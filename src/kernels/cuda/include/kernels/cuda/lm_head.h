// Final norm + LM head for the sampled rows only: the hidden states of the rows that are sampled
// this iteration (the last token of each sequence that emits one) are gathered and normalized,
// then multiplied by the LM head into f32 logits for the sampler. Other rows never reach the
// vocabulary-sized GEMM.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/gemm.h"

namespace nanoflow::cuda {

struct LmHeadParams {
  const __nv_bfloat16* hidden = nullptr;       // [tokens, hidden_size] residual stream
  const int32_t* sample_rows = nullptr;        // [num_sampled] token indices (device)
  const __nv_bfloat16* norm_weight = nullptr;  // [hidden_size]
  const __nv_bfloat16* lm_head = nullptr;      // [vocab, hidden_size] (tied: the embedding table)
  __nv_bfloat16* normed = nullptr;             // workspace [num_sampled, hidden_size]
  float* logits = nullptr;                     // [num_sampled, vocab]
  int num_sampled = 0;
  int hidden_size = 0;
  int vocab = 0;                               // multiple of 8
  float eps = 1e-5f;
  int sm_count_target = 0;
};

void final_norm_lm_head(GemmRunner& gemm, const LmHeadParams& p, cudaStream_t stream);

}  // namespace nanoflow::cuda
