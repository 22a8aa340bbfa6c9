#include "kvcache/block_manager.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace nanoflow::kv {

BlockManager::BlockManager(const BlockManagerConfig& config) : config_(config) {
  NF_CHECK_INPUT(config.num_pages > 0 && config.num_pages < (int64_t{1} << 30))
      << "KV pool needs between 1 and 2^30 pages, got " << config.num_pages;
  const auto n = static_cast<size_t>(config.num_pages);
  ref_.assign(n, 0);
  published_.assign(n, 0);
  hash_.assign(n, 0);
  tokens_.assign(n * kPageTokens, 0);
  lru_prev_.assign(n, kNone);
  lru_next_.assign(n, kNone);
  free_list_.reserve(n);
  // Stack order: page 0 is handed out first (readable traces).
  for (int64_t p = config.num_pages - 1; p >= 0; --p) free_list_.push_back(static_cast<int32_t>(p));
  num_free_ = config.num_pages;
}

uint64_t BlockManager::page_hash(uint64_t prev, const int32_t* tokens) const {
  return XXH3_64bits_withSeed(tokens, sizeof(int32_t) * kPageTokens, prev);
}

int32_t BlockManager::lookup_prefix(std::span<const int32_t> tokens, std::vector<int32_t>* hit_pages) const {
  if (!config_.enable_prefix_caching || tokens.empty()) return 0;
  // Never the last token: its logits are needed, so at least one token is computed.
  const int64_t max_pages = (static_cast<int64_t>(tokens.size()) - 1) / kPageTokens;
  uint64_t h = config_.hash_seed;
  int32_t hits = 0;
  for (int64_t i = 0; i < max_pages; ++i) {
    const int32_t* t = tokens.data() + i * kPageTokens;
    h = page_hash(h, t);
    auto it = index_.find(h);
    if (it == index_.end()) break;
    const int32_t page = it->second;
    if (std::memcmp(&tokens_[static_cast<size_t>(page) * kPageTokens], t, sizeof(int32_t) * kPageTokens) != 0)
      break;  // a hash collision: treat as a miss
    if (hit_pages) hit_pages->push_back(page);
    ++hits;
  }
  return hits;
}

int32_t BlockManager::cached_prefix_tokens(std::span<const int32_t> tokens) const {
  return lookup_prefix(tokens, nullptr) * kPageTokens;
}

int64_t BlockManager::pages_for_admit(std::span<const int32_t> tokens, int32_t reserve_tokens) const {
  std::vector<int32_t> hits;
  lookup_prefix(tokens, &hits);
  int64_t from_lru = 0;
  for (int32_t p : hits) from_lru += ref_[p] == 0 ? 1 : 0;
  const int64_t cached = static_cast<int64_t>(hits.size()) * kPageTokens;
  const int64_t total = pages_for_tokens(std::max<int64_t>(reserve_tokens, cached));
  return total - static_cast<int64_t>(hits.size()) + from_lru;
}

int64_t BlockManager::pages_for_grow(SeqId seq, int32_t total_tokens) const {
  const Sequence& s = seq_or_throw(seq);
  return std::max<int64_t>(0, pages_for_tokens(total_tokens) - static_cast<int64_t>(s.pages.size()));
}

const std::vector<int32_t>& BlockManager::page_table(SeqId seq) const { return seq_or_throw(seq).pages; }
int32_t BlockManager::committed_tokens(SeqId seq) const { return seq_or_throw(seq).committed; }
int32_t BlockManager::capacity_tokens(SeqId seq) const {
  return static_cast<int32_t>(seq_or_throw(seq).pages.size()) * kPageTokens;
}

BlockManager::Sequence& BlockManager::seq_or_throw(SeqId seq) {
  auto it = seqs_.find(seq);
  NF_CHECK(it != seqs_.end()) << "unknown KV sequence " << seq;
  return it->second;
}
const BlockManager::Sequence& BlockManager::seq_or_throw(SeqId seq) const {
  auto it = seqs_.find(seq);
  NF_CHECK(it != seqs_.end()) << "unknown KV sequence " << seq;
  return it->second;
}

ApplyResult BlockManager::apply(const KvOp& op) {
  return std::visit(
      [this](const auto& o) -> ApplyResult {
        using T = std::decay_t<decltype(o)>;
        if constexpr (std::is_same_v<T, AdmitOp>) return do_admit(o);
        else if constexpr (std::is_same_v<T, GrowOp>) return do_grow(o);
        else if constexpr (std::is_same_v<T, CommitOp>) return do_commit(o);
        else if constexpr (std::is_same_v<T, ForkOp>) return do_fork(o);
        else return do_release(o);
      },
      op);
}

ApplyResult BlockManager::do_admit(const AdmitOp& op) {
  // Preconditions: seq unknown, reserve >= 1, enough available pages.
  NF_CHECK(!has(op.seq)) << "admit: sequence " << op.seq << " already exists";
  NF_CHECK_GE(op.reserve_tokens, 1) << "admit: sequence " << op.seq;
  const int64_t need = pages_for_admit(op.tokens, op.reserve_tokens);
  NF_CHECK_LE(need, num_available()) << "admit: not enough KV pages for sequence " << op.seq;

  std::vector<int32_t> hits;
  lookup_prefix(op.tokens, &hits);
  Sequence s;
  s.chain_hash = config_.hash_seed;
  for (int32_t p : hits) {
    add_ref(p);  // before any allocation, so eviction cannot take a hit page
    s.pages.push_back(p);
    s.chain_hash = hash_[p];
  }
  s.committed = static_cast<int32_t>(hits.size()) * kPageTokens;
  const int64_t total = pages_for_tokens(std::max(op.reserve_tokens, s.committed));
  while (static_cast<int64_t>(s.pages.size()) < total) {
    const int32_t p = take_page();
    add_ref(p);
    s.pages.push_back(p);
  }
  prefix_queries_ += static_cast<int64_t>(op.tokens.size());
  prefix_hits_ += s.committed;
  ApplyResult r;
  r.cached_tokens = s.committed;
  seqs_.emplace(op.seq, std::move(s));
  return r;
}

ApplyResult BlockManager::do_grow(const GrowOp& op) {
  // Preconditions: seq known, enough available pages.
  Sequence& s = seq_or_throw(op.seq);
  const int64_t need = pages_for_grow(op.seq, op.total_tokens);
  NF_CHECK_LE(need, num_available()) << "grow: not enough KV pages for sequence " << op.seq;
  for (int64_t i = 0; i < need; ++i) {
    const int32_t p = take_page();
    add_ref(p);
    s.pages.push_back(p);
  }
  return {};
}

ApplyResult BlockManager::do_commit(const CommitOp& op) {
  // Preconditions: seq known, the tokens fit the capacity.
  Sequence& s = seq_or_throw(op.seq);
  NF_CHECK_LE(static_cast<int64_t>(s.committed) + static_cast<int64_t>(op.tokens.size()),
              static_cast<int64_t>(s.pages.size()) * kPageTokens)
      << "commit past the capacity of sequence " << op.seq;
  for (int32_t t : op.tokens) {
    s.partial.push_back(t);
    ++s.committed;
    if (static_cast<int32_t>(s.partial.size()) < kPageTokens) continue;
    const int32_t page = s.pages[static_cast<size_t>(s.committed / kPageTokens - 1)];
    const uint64_t h = page_hash(s.chain_hash, s.partial.data());
    s.chain_hash = h;
    // A page already published (it came from the cache) or a duplicate of a published page
    // (the same prefix computed twice at once) stays as it is.
    if (config_.enable_prefix_caching && !published_[page] && index_.count(h) == 0) {
      published_[page] = 1;
      hash_[page] = h;
      std::memcpy(&tokens_[static_cast<size_t>(page) * kPageTokens], s.partial.data(), sizeof(int32_t) * kPageTokens);
      index_.emplace(h, page);
    }
    s.partial.clear();
  }
  return {};
}

ApplyResult BlockManager::do_fork(const ForkOp& op) {
  // Preconditions: parent known, child unknown, a page for the copied partial page.
  const Sequence& parent = seq_or_throw(op.parent);
  NF_CHECK(!has(op.child)) << "fork: sequence " << op.child << " already exists";
  const int32_t full = parent.committed / kPageTokens;
  const bool has_partial = parent.committed % kPageTokens != 0;
  NF_CHECK_LE(has_partial ? 1 : 0, num_available()) << "fork: no page for the copy of sequence " << op.parent;
  Sequence child;
  child.committed = parent.committed;
  child.chain_hash = parent.chain_hash;
  child.partial = parent.partial;
  for (int32_t i = 0; i < full; ++i) {
    add_ref(parent.pages[static_cast<size_t>(i)]);
    child.pages.push_back(parent.pages[static_cast<size_t>(i)]);
  }
  ApplyResult r;
  if (has_partial) {
    const int32_t p = take_page();
    add_ref(p);
    child.pages.push_back(p);
    r.copies.push_back({parent.pages[static_cast<size_t>(full)], p});
  }
  seqs_.emplace(op.child, std::move(child));
  return r;
}

ApplyResult BlockManager::do_release(const ReleaseOp& op) {
  // Precondition: seq known.
  Sequence& s = seq_or_throw(op.seq);
  // Last page first: the tail of a chain becomes least recently used, so eviction takes the tails
  // of cached prefixes before their heads (which more requests share).
  for (auto it = s.pages.rbegin(); it != s.pages.rend(); ++it) drop_ref(*it);
  seqs_.erase(op.seq);
  return {};
}

int32_t BlockManager::take_page() {
  if (!free_list_.empty()) {
    const int32_t p = free_list_.back();
    free_list_.pop_back();
    --num_free_;
    return p;
  }
  NF_CHECK(lru_head_ != kNone) << "KV pool exhausted";
  const int32_t p = lru_head_;
  lru_remove(p);
  unpublish(p);
  ++evictions_;
  return p;
}

void BlockManager::add_ref(int32_t page) {
  if (ref_[page] == 0 && published_[page]) lru_remove(page);
  ++ref_[page];
}

void BlockManager::drop_ref(int32_t page) {
  NF_CHECK_GT(ref_[page], 0) << "page " << page << " released twice";
  if (--ref_[page] > 0) return;
  if (published_[page]) {
    lru_push_back(page);
  } else {
    free_list_.push_back(page);
    ++num_free_;
  }
}

void BlockManager::lru_push_back(int32_t page) {
  lru_prev_[page] = lru_tail_;
  lru_next_[page] = kNone;
  if (lru_tail_ != kNone) lru_next_[lru_tail_] = page;
  else lru_head_ = page;
  lru_tail_ = page;
  ++num_cached_;
}

void BlockManager::lru_remove(int32_t page) {
  const int32_t prev = lru_prev_[page], next = lru_next_[page];
  if (prev != kNone) lru_next_[prev] = next;
  else lru_head_ = next;
  if (next != kNone) lru_prev_[next] = prev;
  else lru_tail_ = prev;
  lru_prev_[page] = lru_next_[page] = kNone;
  --num_cached_;
}

void BlockManager::unpublish(int32_t page) {
  auto it = index_.find(hash_[page]);
  if (it != index_.end() && it->second == page) index_.erase(it);
  published_[page] = 0;
  hash_[page] = 0;
}

BlockManagerStats BlockManager::stats() const {
  BlockManagerStats s;
  s.num_pages = num_pages();
  s.free = num_free_;
  s.cached = num_cached_;
  s.referenced = num_pages() - num_free_ - num_cached_;
  s.sequences = static_cast<int64_t>(seqs_.size());
  s.prefix_queries = prefix_queries_;
  s.prefix_hits = prefix_hits_;
  s.evictions = evictions_;
  return s;
}

void BlockManager::check_integrity() const {
  const int64_t n = num_pages();
  std::vector<int32_t> refs(static_cast<size_t>(n), 0);
  for (const auto& [id, s] : seqs_) {
    NF_CHECK_LE(s.committed, static_cast<int64_t>(s.pages.size()) * kPageTokens) << "sequence " << id;
    NF_CHECK_EQ(static_cast<int32_t>(s.partial.size()), s.committed % kPageTokens) << "sequence " << id;
    for (int32_t p : s.pages) {
      NF_CHECK(p >= 0 && p < n) << "sequence " << id << " has page " << p;
      ++refs[static_cast<size_t>(p)];
    }
    // Pages shared with another sequence must be full (the writer's own page is never shared).
    for (size_t i = 0; i < s.pages.size(); ++i) {
      if (ref_[s.pages[i]] > 1) {
        NF_CHECK_LE(static_cast<int64_t>(i + 1) * kPageTokens, s.committed)
            << "shared page " << s.pages[i] << " of sequence " << id << " is not full";
      }
    }
  }
  // 0 = not seen, 1 = free list, 2 = LRU list.
  std::vector<uint8_t> where(static_cast<size_t>(n), 0);
  for (int32_t p : free_list_) {
    NF_CHECK(p >= 0 && p < n) << "free list holds page " << p;
    NF_CHECK_EQ(where[p], 0) << "page " << p << " twice in the free list";
    where[p] = 1;
  }
  NF_CHECK_EQ(static_cast<int64_t>(free_list_.size()), num_free_) << "free count";
  int64_t lru_count = 0;
  int32_t prev = kNone;
  for (int32_t p = lru_head_; p != kNone; p = lru_next_[p]) {
    NF_CHECK(p >= 0 && p < n) << "LRU list holds page " << p;
    NF_CHECK_EQ(where[p], 0) << "page " << p << " in the LRU list and elsewhere";
    NF_CHECK_EQ(lru_prev_[p], prev) << "LRU back link of page " << p;
    where[p] = 2;
    prev = p;
    NF_CHECK_LE(++lru_count, n) << "LRU list has a cycle";
  }
  NF_CHECK_EQ(lru_tail_, prev) << "LRU tail";
  NF_CHECK_EQ(lru_count, num_cached_) << "cached count";
  for (int64_t p = 0; p < n; ++p) {
    NF_CHECK_EQ(ref_[p], refs[p]) << "reference count of page " << p;
    if (ref_[p] > 0) {
      NF_CHECK_EQ(where[p], 0) << "referenced page " << p << " is on a list";
    } else {
      NF_CHECK_NE(where[p], 0) << "page " << p << " is lost (no reference, on no list)";
      NF_CHECK_EQ(where[p] == 2, published_[p] != 0) << "page " << p << ": cached iff published";
    }
  }
  int64_t published = 0;
  for (int64_t p = 0; p < n; ++p) published += published_[p];
  NF_CHECK_EQ(static_cast<int64_t>(index_.size()), published) << "prefix index size";
  for (const auto& [h, p] : index_) {
    NF_CHECK(published_[p] && hash_[p] == h) << "prefix index entry for page " << p;
  }
}

}  // namespace nanoflow::kv
