// RoPE on Q and K fused with writing K and V into the paged KV cache (DESIGN.md §4 "KV cache").
//
// Input is the QKV GEMM's output row per token: [q heads | k heads | v heads], each head head_dim
// values (HF q_proj/k_proj/v_proj concatenated), plus an optional QKV bias added first in f32 (the
// CUDA model instead adds Qwen2's bias in the GEMM's epilogue, one rounding as transformers does).
// Outputs: q_out [tokens, hq, head_dim] rotated; K rotated and V copied into
//   k_cache / v_cache: [num_pages][16 slots][hkv][head_dim] bf16,
// at page page_ids[page_start[s] + pos / 16], slot pos % 16 of the token's sequence s.
//
// Rotation, for pair i < head_dim/2 with angle a = pos * inv_freq[i] (f32; sincosf):
//   half-split (HF rotate_half, "neox"):  (x[i], x[i + d/2])   -> (x*cos - y*sin, y*cos + x*sin)
//   interleaved (GGUF/llama.cpp "norm"):  (x[2i], x[2i + 1])   -> same formula
// rounded as transformers computes it on bf16 tensors: cos and sin rounded to bf16, then every
// product and each sum. inv_freq comes from rope_inv_freq (host; `llama3` scaling when
// configured) or rope_inv_freq_on_device (plain RoPE, computed with the GPU's powf as transformers
// does when the model is built on the GPU).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace nanoflow::cuda {

struct RopeKvParams {
  const __nv_bfloat16* qkv = nullptr;       // [tokens, (hq + 2 * hkv) * head_dim]
  const __nv_bfloat16* qkv_bias = nullptr;  // optional [(hq + 2 * hkv) * head_dim]
  __nv_bfloat16* q_out = nullptr;           // [tokens, hq, head_dim]
  __nv_bfloat16* k_cache = nullptr;         // [num_pages, 16, hkv, head_dim]
  __nv_bfloat16* v_cache = nullptr;         // [num_pages, 16, hkv, head_dim]
  const float* inv_freq = nullptr;          // [head_dim / 2]
  const int32_t* positions = nullptr;       // [tokens] absolute position of each token
  const int32_t* q_start = nullptr;         // [num_seqs + 1] CSR: sequence s owns tokens
                                            // [q_start[s], q_start[s + 1])
  const int32_t* page_start = nullptr;      // [num_seqs + 1] CSR into page_ids
  const int32_t* page_ids = nullptr;        // pages of each sequence in position order
  int tokens = 0;                           // rows token_begin .. token_begin + tokens - 1 are done
  int token_begin = 0;                      // (a nano-batch's rows; positions, qkv, q_out and
                                            // q_start stay indexed by the plan's global row)
  int num_seqs = 0;
  int hq = 0, hkv = 0, head_dim = 0;        // multiple of 16
  bool interleaved = false;
  int cta_budget = 0;                       // 0 = no cap
};
cudaError_t launch_rope_kv(const RopeKvParams& p, cudaStream_t stream);
void rope_kv(const RopeKvParams& p, cudaStream_t stream);

// RoPE frequencies inv_freq[i] = theta^(-2i/d), with Llama 3's frequency-dependent scaling when
// `llama3` is set (rope_scaling: factor, low_freq_factor, high_freq_factor,
// original_max_position_embeddings).
struct RopeFreqConfig {
  int head_dim = 128;
  double theta = 10000.0;
  bool llama3 = false;
  double factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int original_max_position = 8192;
};
std::vector<float> rope_inv_freq(const RopeFreqConfig& c);
// out[i] = 1.0f / powf((float)theta, (float)(2i) / (float)head_dim), i < head_dim / 2, on the GPU
// (f32 throughout, like transformers' default rope init). Asynchronous on `stream`.
cudaError_t launch_rope_inv_freq(float theta, int head_dim, float* out, cudaStream_t stream);
void rope_inv_freq_on_device(double theta, int head_dim, float* out, cudaStream_t stream);

}  // namespace nanoflow::cuda
