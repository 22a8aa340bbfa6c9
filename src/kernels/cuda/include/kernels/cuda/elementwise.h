// Memory-bound elementwise ops on bf16 rows, 16-byte vectors, grid-stride loops whose grid is capped
// by a CTA budget (0 = enough CTAs for every SM several times over), so they can run on an SM share.
//   silu_mul:  out[t, i] = silu(gate_up[t, i]) * gate_up[t, I + i]   (gate and up projections
//              concatenated along the output dimension by the gate-up GEMM)
//   add_bias:  x[t, n] += bias[n]
//   add:       x[i] = bf16(x[i] + y[i])   (an un-fused residual add, as transformers rounds it)
//   embedding: out[t, :] = table[ids[t], :]; an id outside [0, vocab) gives a zero row and counts
//              in *bad_ids (ids are validated on the host; this keeps a bad one from reading wild)
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace nanoflow::cuda {

struct SiluMulParams {
  const __nv_bfloat16* gate_up = nullptr;  // [tokens, 2 * inter]
  __nv_bfloat16* out = nullptr;            // [tokens, inter]
  int tokens = 0;
  int inter = 0;                           // multiple of 8
  int cta_budget = 0;
};
cudaError_t launch_silu_mul(const SiluMulParams& p, cudaStream_t stream);
void silu_mul(const SiluMulParams& p, cudaStream_t stream);

struct AddBiasParams {
  __nv_bfloat16* x = nullptr;           // [rows, cols], updated in place
  const __nv_bfloat16* bias = nullptr;  // [cols]
  int rows = 0;
  int cols = 0;                         // multiple of 8
  int cta_budget = 0;
};
cudaError_t launch_add_bias(const AddBiasParams& p, cudaStream_t stream);
void add_bias(const AddBiasParams& p, cudaStream_t stream);

struct AddParams {
  __nv_bfloat16* x = nullptr;        // [n], updated in place
  const __nv_bfloat16* y = nullptr;  // [n]
  int64_t n = 0;                     // multiple of 8
  int cta_budget = 0;
};
cudaError_t launch_add(const AddParams& p, cudaStream_t stream);
void add(const AddParams& p, cudaStream_t stream);

struct EmbeddingParams {
  const int32_t* ids = nullptr;           // [tokens]
  const __nv_bfloat16* table = nullptr;   // [vocab, hidden]
  __nv_bfloat16* out = nullptr;           // [tokens, hidden]
  int* bad_ids = nullptr;                 // optional counter of out-of-range ids
  int tokens = 0;
  int vocab = 0;
  int hidden = 0;                         // multiple of 8
  int cta_budget = 0;
};
cudaError_t launch_embedding(const EmbeddingParams& p, cudaStream_t stream);
void embedding(const EmbeddingParams& p, cudaStream_t stream);

}  // namespace nanoflow::cuda
