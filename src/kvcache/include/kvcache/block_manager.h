// The host-side owner of the paged KV cache (DESIGN.md §4 "KV cache"): which physical page holds
// which 16 tokens of which sequence, reference counts, and the prefix cache.
//
// Pages. The pool has `num_pages` pages of kPageTokens token slots each (the device pools behind
// them are [page][slot][kv_head][head_dim] per layer; this class never touches them). A page is in
// exactly one of three states:
//   referenced  ref > 0, in the page table of >= 1 sequence;
//   cached      ref == 0, full and published in the prefix index, on the LRU list (evictable);
//   free        ref == 0, not published, on the free list.
// A page shared by several sequences (prefix hit or fork) is always full and never written again;
// the only page a sequence writes is its own last, partial one (copy-on-write at fork).
//
// Prefix cache. Full pages are keyed by a hash chain: h_0 = XXH3(tokens of page 0, seed), h_i =
// XXH3(tokens of page i, h_{i-1}). The seed is random per engine unless configured, so a client
// cannot craft collisions; a hit is still confirmed by comparing the page's 16 token ids.
//
// State changes only through apply(KvOp); every op checks all its preconditions (listed on the op)
// before it changes anything, so a failed apply leaves the manager as it was.
#pragma once
#include <cstdint>
#include <span>
#include <unordered_map>
#include <variant>
#include <vector>

namespace nanoflow::kv {

inline constexpr int32_t kPageTokens = 16;  // tokens per page (== model::kPageSize, checked in engine)

using SeqId = uint64_t;

struct BlockManagerConfig {
  int64_t num_pages = 0;
  bool enable_prefix_caching = true;
  uint64_t hash_seed = 0;  // the chain's seed; callers pick a random one unless told otherwise
};

// Creates `seq`, attaches the longest cached prefix of `tokens` (full pages only, and never the
// last token: its logits must be computed), then allocates pages to hold `reserve_tokens` in total.
// Pre: seq unknown; reserve_tokens >= 1; enough free + evictable pages (pages_for_admit()).
struct AdmitOp {
  SeqId seq = 0;
  std::span<const int32_t> tokens;  // the sequence so far (prompt, or prompt + outputs on resume)
  int32_t reserve_tokens = 0;       // capacity wanted now (e.g. cached + first prefill chunk)
};
// Grows `seq`'s page table to hold `total_tokens`. Pre: seq known; enough pages.
struct GrowOp {
  SeqId seq = 0;
  int32_t total_tokens = 0;
};
// Records that the KV of `tokens` (the next ones after those already committed) is now written.
// Pages that become full are hashed and published in the prefix index.
// Pre: seq known; committed + tokens.size() <= capacity.
struct CommitOp {
  SeqId seq = 0;
  std::span<const int32_t> tokens;
};
// Creates `child` sharing `parent`'s committed full pages; the parent's partial page (if any) is
// copied into a fresh page of the child (returned in ApplyResult::copies; the caller copies the
// device KV before the child's next forward). Pre: parent known; child unknown; a free page if a
// partial page exists.
struct ForkOp {
  SeqId parent = 0;
  SeqId child = 0;
};
// Drops `seq`: its pages lose a reference; full published ones become cached, others free.
// Pre: seq known.
struct ReleaseOp {
  SeqId seq = 0;
};
using KvOp = std::variant<AdmitOp, GrowOp, CommitOp, ForkOp, ReleaseOp>;

struct PageCopy {
  int32_t src = 0;
  int32_t dst = 0;
};
struct ApplyResult {
  int32_t cached_tokens = 0;    // AdmitOp: prompt tokens served by the prefix cache
  std::vector<PageCopy> copies; // ForkOp: device copies the caller must perform
};

struct BlockManagerStats {
  int64_t num_pages = 0;
  int64_t referenced = 0;   // pages with ref > 0
  int64_t cached = 0;       // evictable published pages
  int64_t free = 0;         // free-list pages
  int64_t sequences = 0;
  int64_t prefix_queries = 0;  // tokens looked up at admission
  int64_t prefix_hits = 0;     // tokens served from the cache
  int64_t evictions = 0;
};

class BlockManager {
 public:
  explicit BlockManager(const BlockManagerConfig& config);

  ApplyResult apply(const KvOp& op);

  // --- queries (no state change) ---
  int64_t num_pages() const { return static_cast<int64_t>(ref_.size()); }
  int64_t num_available() const { return num_free_ + num_cached_; }  // free + evictable
  // Pages an AdmitOp with these arguments would take from the available ones (cache hits on
  // evictable pages count, since attaching them removes them from the LRU list).
  int64_t pages_for_admit(std::span<const int32_t> tokens, int32_t reserve_tokens) const;
  int64_t pages_for_grow(SeqId seq, int32_t total_tokens) const;
  // Tokens an AdmitOp would take from the cache (without admitting).
  int32_t cached_prefix_tokens(std::span<const int32_t> tokens) const;
  bool has(SeqId seq) const { return seqs_.count(seq) != 0; }
  const std::vector<int32_t>& page_table(SeqId seq) const;
  int32_t committed_tokens(SeqId seq) const;
  int32_t capacity_tokens(SeqId seq) const;
  BlockManagerStats stats() const;
  static int64_t pages_for_tokens(int64_t tokens) { return (tokens + kPageTokens - 1) / kPageTokens; }

  // Recounts everything from the page tables and lists; throws Error(kInternal) naming the first
  // broken invariant. O(pages + table entries); run in tests and when the engine is idle.
  void check_integrity() const;

 private:
  struct Sequence {
    std::vector<int32_t> pages;    // page table, in position order
    int32_t committed = 0;         // tokens whose KV is written
    uint64_t chain_hash = 0;       // hash of the last full committed page (seed when none)
    std::vector<int32_t> partial;  // committed tokens of the last, partial page (< kPageTokens)
  };
  static constexpr int32_t kNone = -1;

  // The hashes of the full pages of `tokens` that admission may take from the cache, and how many
  // leading ones are cached (confirmed by token comparison).
  int32_t lookup_prefix(std::span<const int32_t> tokens, std::vector<int32_t>* hit_pages) const;
  uint64_t page_hash(uint64_t prev, const int32_t* tokens) const;

  ApplyResult do_admit(const AdmitOp& op);
  ApplyResult do_grow(const GrowOp& op);
  ApplyResult do_commit(const CommitOp& op);
  ApplyResult do_fork(const ForkOp& op);
  ApplyResult do_release(const ReleaseOp& op);

  int32_t take_page();                 // free list first, else evict the LRU cached page
  void add_ref(int32_t page);          // also removes a cached page from the LRU list
  void drop_ref(int32_t page);
  void lru_push_back(int32_t page);
  void lru_remove(int32_t page);
  void unpublish(int32_t page);
  Sequence& seq_or_throw(SeqId seq);
  const Sequence& seq_or_throw(SeqId seq) const;

  BlockManagerConfig config_;
  // Per page, indexed by page id [num_pages]:
  std::vector<int32_t> ref_;           // reference count
  std::vector<uint8_t> published_;     // 1 when in index_ (full, hash_ valid)
  std::vector<uint64_t> hash_;         // chain hash of the page when published
  std::vector<int32_t> tokens_;        // [num_pages * kPageTokens] token ids of published pages
  std::vector<int32_t> lru_prev_, lru_next_;  // intrusive LRU list of cached pages
  int32_t lru_head_ = kNone, lru_tail_ = kNone;  // head = least recently used
  std::vector<int32_t> free_list_;     // stack of free page ids
  int64_t num_free_ = 0, num_cached_ = 0;
  std::unordered_map<uint64_t, int32_t> index_;  // chain hash -> published page
  std::unordered_map<SeqId, Sequence> seqs_;
  int64_t prefix_queries_ = 0, prefix_hits_ = 0, evictions_ = 0;
};

}  // namespace nanoflow::kv
