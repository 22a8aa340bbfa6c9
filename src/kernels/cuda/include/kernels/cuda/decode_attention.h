// Paged decode attention with GQA (one query token per sequence) over the KV cache
// [page][16 slots][hkv][head_dim] bf16.
//
// Work split: one CTA per (KV split, kv head, sequence). The G = hq / hkv query heads of a group
// are the rows of tensor-core tiles (mma.sync m16n8k16, G <= 16), so each K/V row is loaded once
// for all of them. A sequence's KV is cut into splits of `chunk_tokens` (plan_decode_attention picks
// them from the CTA budget: few sequences -> more splits so the SMs of a share all have work);
// each split writes a partial output and its log-sum-exp, and a merge kernel combines them. With
// one split the CTA writes `out` directly. Variants 1-6: K/V tiles of 64 tokens stream through
// shared memory by cp.async (tile size, ring depth and CTAs per SM differ); variants 7-8, 13-17
// and 22-24: each warp streams its own 16-key (22-24: 32-key) steps with K (and V, or V through a
// per-warp ring) loaded straight into registers (decode_attention.cu); variants 27-35: each warp
// streams its 16-key steps through its own ring of shared-memory stages filled by TMA
// (decode_attention_tma.cu). Variants 9-12, 18-21, 25-26 and 36-39 were measured slower and
// removed; their numbers stay reserved (docs/perf/RESULTS.md cites them) and are refused.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace nanoflow::cuda {

struct DecodeAttentionParams {
  const __nv_bfloat16* q = nullptr;        // [num_seqs, hq, head_dim]
  const __nv_bfloat16* k_cache = nullptr;  // [num_pages, 16, hkv, head_dim]
  const __nv_bfloat16* v_cache = nullptr;  // [num_pages, 16, hkv, head_dim]
  const int32_t* kv_len = nullptr;         // [num_seqs] tokens of KV (>= 1) incl. the new one
  const int32_t* page_start = nullptr;     // [num_seqs + 1] CSR into page_ids
  const int32_t* page_ids = nullptr;       // pages of each sequence, position order
  __nv_bfloat16* out = nullptr;            // [num_seqs, hq, head_dim]
  float* workspace = nullptr;              // decode_attention_workspace_floats(...) floats when
                                           // num_splits > 1: partial outputs, then partial LSEs
  int num_seqs = 0;
  int hq = 0, hkv = 0;                     // hq / hkv <= 16
  int head_dim = 128;                      // 64 or 128
  float scale = 0.f;                       // softmax scale, usually 1/sqrt(head_dim)
  int num_splits = 1;                      // from plan_decode_attention
  int chunk_tokens = 0;                    // KV tokens per split (multiple of 64; the kernels need 16)
  int variant = 0;                         // kernel variant (decode_attention.cu); 0 = default
  int num_pages = 0;                       // pages of the k_cache / v_cache pools (each 16 * hkv * head_dim);
                                           // 0 = unknown: the TMA variants (27+), whose tensor maps
                                           // need the pool's extent, run the default instead
  int sm_count = 0;                        // SMs of the share this call runs on: below the
                                           // device's SMs, the default runs TMA variant 33;
                                           // 0 = every SM of the device
};
// The highest variant number in use. Not every number up to it is a variant: iterate with
// decode_attention_variant_valid.
inline constexpr int kDecodeAttentionVariants = 35;

// Variants measured slower and removed (docs/perf/RESULTS.md, "Decode attention"): register-fed
// V rings of >= 3 stages (9, 10, 12) and K+V in two register buffers (11), L2 prefetch (18-21,
// 25-26), persistent TMA CTAs (36-39). decode_attention refuses them by name.
constexpr bool decode_attention_variant_removed(int variant) {
  return (variant >= 9 && variant <= 12) || (variant >= 18 && variant <= 21) || variant == 25 || variant == 26 ||
         (variant >= 36 && variant <= 39);
}
// 0 (the default) and every variant number in use.
constexpr bool decode_attention_variant_valid(int variant) {
  return variant >= 0 && variant <= kDecodeAttentionVariants && !decode_attention_variant_removed(variant);
}

struct DecodeAttentionPlan {
  int num_splits = 1;
  int chunk_tokens = 0;
};
// Picks splits so that num_seqs * hkv * num_splits reaches about `cta_budget` CTAs (the caller's
// SM share times the CTAs one SM holds), never cutting below 256 tokens a split. Host only.
DecodeAttentionPlan plan_decode_attention(int num_seqs, int hkv, int max_kv_len, int cta_budget);
size_t decode_attention_workspace_floats(int num_seqs, int hq, int head_dim, int num_splits);

cudaError_t launch_decode_attention(const DecodeAttentionParams& p, cudaStream_t stream);
void decode_attention(const DecodeAttentionParams& p, cudaStream_t stream);

}  // namespace nanoflow::cuda
