// Checked entry point and host-side plan of decode_attention (kernels: decode_attention.cu).
#include "kernels/cuda/decode_attention.h"

#include <algorithm>

#include "check_util.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

namespace {
constexpr int kMinChunk = 256;  // shorter splits cost more in merge traffic than they gain
constexpr int kChunkAlign = 64;
}  // namespace

DecodeAttentionPlan plan_decode_attention(int num_seqs, int hkv, int max_kv_len, int cta_budget) {
  NF_CHECK_INPUT(num_seqs > 0 && hkv > 0 && max_kv_len > 0 && cta_budget >= 0)
      << "plan_decode_attention seqs=" << num_seqs << " hkv=" << hkv << " max_kv=" << max_kv_len
      << " budget=" << cta_budget;
  const int64_t base = static_cast<int64_t>(num_seqs) * hkv;
  const int64_t want = cta_budget > 0 ? (cta_budget + base - 1) / base : 1;
  const int64_t max_splits = std::max<int64_t>(1, (max_kv_len + kMinChunk - 1) / kMinChunk);
  const int splits = static_cast<int>(std::clamp<int64_t>(want, 1, max_splits));
  DecodeAttentionPlan plan;
  plan.chunk_tokens = ((max_kv_len + splits - 1) / splits + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
  plan.num_splits = (max_kv_len + plan.chunk_tokens - 1) / plan.chunk_tokens;
  return plan;
}

size_t decode_attention_workspace_floats(int num_seqs, int hq, int head_dim, int num_splits) {
  if (num_splits <= 1) return 0;
  return static_cast<size_t>(num_seqs) * hq * num_splits * (head_dim + 1);
}

void decode_attention(const DecodeAttentionParams& p, cudaStream_t stream) {
  NF_CHECK_INPUT(p.num_seqs >= 0) << "num_seqs " << p.num_seqs;
  NF_CHECK_INPUT(p.head_dim == 64 || p.head_dim == 128) << "decode_attention head_dim " << p.head_dim
                                                        << " (64 or 128 supported)";
  NF_CHECK_INPUT(p.hq > 0 && p.hkv > 0 && p.hq % p.hkv == 0 && p.hq / p.hkv <= 16)
      << "decode_attention hq=" << p.hq << " hkv=" << p.hkv << " (group size <= 16)";
  NF_CHECK_INPUT(p.scale > 0.f) << "scale " << p.scale;
  NF_CHECK_INPUT(p.num_splits >= 1 && p.chunk_tokens > 0 && p.chunk_tokens % kChunkAlign == 0)
      << "num_splits " << p.num_splits << " chunk_tokens " << p.chunk_tokens << " (use plan_decode_attention)";
  NF_CHECK_INPUT(!decode_attention_variant_removed(p.variant))
      << "decode attention variant " << p.variant << " was removed; see docs/perf/RESULTS.md";
  NF_CHECK_INPUT(decode_attention_variant_valid(p.variant)) << "variant " << p.variant;
  NF_CHECK_INPUT(p.num_pages >= 0) << "num_pages " << p.num_pages;
  NF_CHECK_INPUT(p.num_splits <= 65535) << "num_splits " << p.num_splits;
  NF_CHECK_INPUT(p.num_seqs <= 65535 && p.hkv <= 65535) << "grid too large";
  NF_CHECK_PTR(p.q);
  NF_CHECK_PTR(p.k_cache);
  NF_CHECK_PTR(p.v_cache);
  NF_CHECK_PTR(p.kv_len);
  NF_CHECK_PTR(p.page_start);
  NF_CHECK_PTR(p.page_ids);
  NF_CHECK_PTR(p.out);
  NF_CHECK_ALIGNED(p.q);
  NF_CHECK_ALIGNED(p.k_cache);
  NF_CHECK_ALIGNED(p.v_cache);
  if (p.num_splits > 1) {
    NF_CHECK_INPUT(p.workspace != nullptr) << "decode_attention with " << p.num_splits
                                           << " splits needs a workspace";
  }
  NF_CUDA_CHECK(launch_decode_attention(p, stream)) << "decode_attention seqs=" << p.num_seqs;
}

}  // namespace nanoflow::cuda
