// Prefill attention over the paged KV cache with the causal mask, for chunked prefill: a chunk of
// qlen query tokens of a sequence whose KV (cached prefix + the chunk itself, already written by
// rope_kv) has kv_len tokens. Query i of the chunk sits at position kv_len - qlen + i and attends
// to positions [0, kv_len - qlen + i].
//
// Our own tensor-core kernel (mma.sync m16n8k16 bf16, f32 accumulate; FlashAttention-2 style online
// softmax): a CTA of 4 warps takes 64 query rows of one head, each warp 16 rows; K/V tiles of 64
// tokens are gathered from pages into shared memory with cp.async, double-buffered. Heads of a GQA
// group share K/V through L2 (pairing a group's heads in one 8-warp CTA to share each K/V tile in
// shared memory was measured slower everywhere on an H200 and removed; docs/perf/RESULTS.md).
// Work list: plan_prefill_attention turns q_start into (sequence,
// first query row) tiles, heaviest first, uploaded by the caller (plan outside graph capture).
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

namespace nanoflow::cuda {

struct PrefillAttentionParams {
  const __nv_bfloat16* q = nullptr;        // [tokens, hq, head_dim] (rope applied)
  const __nv_bfloat16* k_cache = nullptr;  // [num_pages, 16, hkv, head_dim]
  const __nv_bfloat16* v_cache = nullptr;  // [num_pages, 16, hkv, head_dim]
  const int32_t* q_start = nullptr;        // [num_seqs + 1] CSR over tokens
  const int32_t* kv_len = nullptr;         // [num_seqs] KV tokens incl. this chunk (>= qlen)
  const int32_t* page_start = nullptr;     // [num_seqs + 1] CSR into page_ids
  const int32_t* page_ids = nullptr;
  const int32_t* tiles = nullptr;          // [num_tiles, 2]: (sequence, first query row in chunk)
  __nv_bfloat16* out = nullptr;            // [tokens, hq, head_dim]
  int num_tiles = 0;
  int hq = 0, hkv = 0;
  int head_dim = 128;                      // 64 or 128
  float scale = 0.f;
};

inline constexpr int kPrefillTileRows = 64;
// Host: tiles for q_start (num_seqs + 1 entries) and kv_len, heaviest (most keys) first.
std::vector<int32_t> plan_prefill_attention(const std::vector<int32_t>& q_start,
                                            const std::vector<int32_t>& kv_len);

cudaError_t launch_prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream);
void prefill_attention(const PrefillAttentionParams& p, cudaStream_t stream);

}  // namespace nanoflow::cuda
