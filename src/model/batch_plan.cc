#include "model/batch_plan.h"

#include "core/error.h"

namespace nanoflow {

void BatchPlan::validate(int64_t num_pages_in_pool) const {
  const int32_t n = num_seqs();
  NF_CHECK_EQ(token_ids.size(), positions.size()) << "token_ids vs positions";
  NF_CHECK_EQ(q_start.size(), static_cast<size_t>(n) + 1) << "q_start size";
  NF_CHECK_EQ(page_start.size(), static_cast<size_t>(n) + 1) << "page_start size";
  NF_CHECK_EQ(q_start.front(), 0);
  NF_CHECK_EQ(q_start.back(), num_tokens());
  NF_CHECK_EQ(page_start.front(), 0);
  NF_CHECK_EQ(static_cast<size_t>(page_start.back()), page_ids.size());
  for (int32_t s = 0; s < n; ++s) {
    const int32_t q = q_start[s + 1] - q_start[s];
    NF_CHECK_GT(q, 0) << "sequence " << s << " has no tokens";
    NF_CHECK_GE(kv_len[s], q) << "sequence " << s;
    const int32_t pages = page_start[s + 1] - page_start[s];
    NF_CHECK_GE(int64_t{pages} * kPageSize, kv_len[s]) << "sequence " << s << " lacks pages";
    for (int32_t t = 0; t < q; ++t)
      NF_CHECK_EQ(positions[q_start[s] + t], kv_len[s] - q + t) << "position of token " << t << " of sequence " << s;
  }
  for (int32_t p : page_ids) NF_CHECK(p >= 0 && p < num_pages_in_pool) << "page id " << p;
  for (size_t i = 0; i < sample_rows.size(); ++i) {
    NF_CHECK(sample_rows[i] >= 0 && sample_rows[i] < num_tokens()) << "sample row " << sample_rows[i];
  }
}

}  // namespace nanoflow
