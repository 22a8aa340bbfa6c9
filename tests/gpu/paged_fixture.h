// A random paged KV layout for attention tests: sequences' pages shuffled over the pool, K/V
// values written into the pool through the CPU reference kv_write.
#pragma once
#include <algorithm>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

namespace nanoflow::gputest {

struct PagedLayout {
  std::vector<int32_t> q_start{0}, kv_len, page_start{0}, page_ids, positions;
  int num_pages = 0;
};

// One (qlen, kvlen) pair per sequence.
inline PagedLayout make_layout(const std::vector<std::pair<int, int>>& qlen_kvlen, std::mt19937& rng,
                               int spare_pages = 3) {
  PagedLayout L;
  int total_pages = spare_pages;
  for (auto [q, kv] : qlen_kvlen) total_pages += (kv + 15) / 16;
  std::vector<int32_t> perm(total_pages);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  int next = 0;
  for (auto [q, kv] : qlen_kvlen) {
    L.q_start.push_back(L.q_start.back() + q);
    L.kv_len.push_back(kv);
    for (int i = 0; i < (kv + 15) / 16; ++i) L.page_ids.push_back(perm[next++]);
    L.page_start.push_back(static_cast<int32_t>(L.page_ids.size()));
    for (int i = 0; i < q; ++i) L.positions.push_back(kv - q + i);
  }
  L.num_pages = total_pages;
  return L;
}

}  // namespace nanoflow::gputest
