// The BatchPlan (DESIGN.md §4): what one iteration computes, as plain arrays. Nothing here points
// at a Request. Built by the engine's Scheduler, consumed by the model's forward pass.
//
// Sequences appear in token order: sequence s owns tokens [q_start[s], q_start[s+1]). A sequence
// in decode has one token; a prefill chunk has several. Its KV after this iteration covers
// positions [0, kv_len[s]); the chunk's tokens are the last (q_start[s+1]-q_start[s]) of those.
#pragma once
#include <cstdint>
#include <vector>

namespace nanoflow {

inline constexpr int kPageSize = 16;  // tokens per KV page (DESIGN.md §4)

struct BatchPlan {
  std::vector<int32_t> token_ids;    // [num_tokens]
  std::vector<int32_t> positions;    // [num_tokens] absolute position of each token
  std::vector<int32_t> q_start;      // [num_seqs + 1] CSR offsets into tokens
  std::vector<int32_t> kv_len;       // [num_seqs] KV length including this iteration's tokens
  std::vector<int32_t> page_start;   // [num_seqs + 1] CSR offsets into page_ids
  std::vector<int32_t> page_ids;     // pages of each sequence, in position order (page p holds
                                     // positions [16p', 16p'+16) of that sequence)
  std::vector<int32_t> sample_rows;  // token indices whose logits the forward returns, in order

  int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
  int32_t num_seqs() const { return static_cast<int32_t>(kv_len.size()); }
  // Throws Error(kInternal) if the arrays are inconsistent (sizes, CSR monotonic, enough pages for
  // kv_len, positions matching kv_len, sample rows in range). Cheap; run before every forward.
  void validate(int64_t num_pages_in_pool) const;
};

}  // namespace nanoflow
