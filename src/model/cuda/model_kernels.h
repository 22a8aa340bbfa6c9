// Small kernels the CUDA model needs around the kernels/cuda ops: the deferred-token gather of
// asynchronous scheduling, a plain paged attention for head sizes the tuned kernels do not cover
// (the tiny golden models: head_dim 16), the Mixtral router and expert combine, and constant fills
// for norm weights of random presets. Launchers on raw pointers (model_kernels.cu, C++17 for nvcc);
// they return the launch status, the caller checks it. Private to src/model/cuda.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace nanoflow::model_cuda {

// token_ids[pairs[2i]] = prev_sampled[pairs[2i + 1]] for i < n (DESIGN.md §4: a decode's input is
// the token sampled one iteration earlier, still on the device when the plan is built).
cudaError_t launch_fill_deferred(int32_t* token_ids, const int32_t* prev_sampled, const int32_t* pairs, int n,
                                 cudaStream_t s);

// Causal paged attention, any head_dim <= 256, one CTA per (token, q head), the row's scores in
// shared memory (max_kv_len + head_dim floats). Rounds as transformers' eager attention on bf16
// tensors: scores = bf16(bf16(q.k) * scale), softmax in f32 (expf) normalized and rounded to bf16
// before the P.V product, output rounded once. Slow; for small test models (head_dim 16) and the
// transformers-numerics mode. Caches [page][16][hkv][head_dim] bf16.
struct NaiveAttentionParams {
  const __nv_bfloat16* q = nullptr;        // [tokens, hq, head_dim]
  const __nv_bfloat16* k_cache = nullptr;  // [pages, 16, hkv, head_dim]
  const __nv_bfloat16* v_cache = nullptr;
  const int32_t* q_start = nullptr;        // [num_seqs + 1]
  const int32_t* kv_len = nullptr;         // [num_seqs]
  const int32_t* page_start = nullptr;     // [num_seqs + 1]
  const int32_t* page_ids = nullptr;
  __nv_bfloat16* out = nullptr;            // [tokens, hq, head_dim]
  int tokens = 0, num_seqs = 0, hq = 0, hkv = 0, head_dim = 0, max_kv_len = 0;
  float scale = 0.f;
};
cudaError_t launch_naive_attention(const NaiveAttentionParams& p, cudaStream_t s);

// Mixtral router: softmax over the experts of each row, top-k, renormalized; written dense as
// weights[t, e] (0 for experts a token does not use). Ties: lower expert id first. `logits` rows
// have stride ld >= experts (the router GEMM's output is padded to a multiple of 8 columns).
cudaError_t launch_moe_route(const float* logits, int ld, int tokens, int experts, int top_k, float* weights,
                             cudaStream_t s);
// acc[t, :] (+)= weights[t, e] * y[t, :] (f32 accumulator; `first` overwrites).
cudaError_t launch_moe_combine(float* acc, const __nv_bfloat16* y, const float* weights, int tokens, int hidden,
                               int expert, int experts, bool first, cudaStream_t s);
// x[t, :] = bf16(x + bf16(acc)) — the residual add after the MoE block (HF adds in bf16).
cudaError_t launch_add_f32_into_bf16(__nv_bfloat16* x, const float* acc, size_t n, cudaStream_t s);

cudaError_t launch_fill_const_bf16(__nv_bfloat16* p, size_t n, float value, cudaStream_t s);

}  // namespace nanoflow::model_cuda
