#include "bpe.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "byte_level.h"
#include "core/error.h"
#include "utf8.h"

namespace nanoflow::tok {
namespace {

// A symbol of the word being merged; symbols form a doubly linked list over a fixed array.
struct Symbol {
  int32_t id;
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
  bool live;
};

// A candidate merge of symbols[pos] with its successor; ordered by rank, then position.
struct Candidate {
  int32_t rank;
  int32_t pos;
  int32_t new_id;
};
struct CandidateAfter {  // std heap is a max-heap: "after" puts the lowest (rank, pos) on top
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// Scratch buffers reused across words on one thread.
struct Scratch {
  std::vector<int32_t> ids;
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

}  // namespace

BpeModel::BpeModel(BpeConfig cfg, VocabMap vocab, const std::vector<std::pair<int32_t, int32_t>>& merges,
                   const std::vector<std::string>& id_to_key)
    : cfg_(std::move(cfg)), vocab_(std::move(vocab)) {
  if (!cfg_.continuing_subword_prefix.empty() || !cfg_.end_of_word_suffix.empty())
    NF_THROW(kUnsupported) << "BPE continuing_subword_prefix / end_of_word_suffix are not supported";
  merges_.reserve(merges.size());
  std::string joined;
  for (size_t r = 0; r < merges.size(); ++r) {
    auto [a, b] = merges[r];
    joined.assign(id_to_key[a]).append(id_to_key[b]);
    auto it = vocab_.find(joined);
    if (it == vocab_.end())
      NF_THROW(kBadFile) << "merge #" << r << " produces a token that is not in the vocabulary";
    merges_.put(a, b, MergeInfo{static_cast<int32_t>(r), it->second});
  }
  byte_sym_.fill(-1);
  fallback_sym_.fill(-1);
  for (int b = 0; b < 256; ++b) {
    std::string key = cfg_.byte_level ? std::string(1, static_cast<char>(b)) : std::string();
    if (cfg_.byte_level) {
      if (auto it = vocab_.find(key); it != vocab_.end()) byte_sym_[b] = it->second;
    }
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    if (auto it = vocab_.find(std::string_view(name)); it != vocab_.end()) fallback_sym_[b] = it->second;
  }
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>* ids) const {
  ids->clear();
  if (cfg_.byte_level) {
    // Bytes whose byte-level character is not in the vocabulary are dropped (HF without unk).
    for (char c : word) {
      int32_t id = byte_sym_[static_cast<uint8_t>(c)];
      if (id >= 0) ids->push_back(id);
      else if (cfg_.unk_id) ids->push_back(*cfg_.unk_id);
    }
    return;
  }
  bool pending_unk = false;  // a fused run of unknown characters not yet emitted
  size_t i = 0;
  while (i < word.size()) {
    size_t n = utf8_seq_len(static_cast<uint8_t>(word[i]));
    std::string_view ch = word.substr(i, n);
    i += n;
    if (auto it = vocab_.find(ch); it != vocab_.end()) {
      if (pending_unk) ids->push_back(*cfg_.unk_id), pending_unk = false;
      ids->push_back(it->second);
      continue;
    }
    if (cfg_.byte_fallback) {
      bool all = std::all_of(ch.begin(), ch.end(), [&](char c) { return fallback_sym_[static_cast<uint8_t>(c)] >= 0; });
      if (all) {
        if (pending_unk) ids->push_back(*cfg_.unk_id), pending_unk = false;
        for (char c : ch) ids->push_back(fallback_sym_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (!cfg_.unk_id) continue;  // HF drops the character when there is no unknown token
    if (cfg_.fuse_unk) {
      pending_unk = true;
    } else {
      ids->push_back(*cfg_.unk_id);
    }
  }
  if (pending_unk) ids->push_back(*cfg_.unk_id);
}

void BpeModel::merge_word(std::string_view word, std::vector<int32_t>* out) const {
  Scratch& s = scratch();
  initial_symbols(word, &s.ids);
  const size_t n = s.ids.size();
  if (n <= 1) {
    out->insert(out->end(), s.ids.begin(), s.ids.end());
    return;
  }
  auto& sym = s.symbols;
  sym.resize(n);
  for (size_t k = 0; k < n; ++k)
    sym[k] = Symbol{s.ids[k], static_cast<int32_t>(k) - 1, k + 1 < n ? static_cast<int32_t>(k + 1) : -1, true};
  auto& heap = s.heap;
  heap.clear();
  for (size_t k = 0; k + 1 < n; ++k)
    if (const MergeInfo* m = merges_.get(sym[k].id, sym[k + 1].id))
      heap.push_back(Candidate{m->rank, static_cast<int32_t>(k), m->id});
  std::make_heap(heap.begin(), heap.end(), CandidateAfter{});
  auto push = [&](int32_t pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    if (const MergeInfo* m = merges_.get(sym[pos].id, sym[sym[pos].next].id)) {
      heap.push_back(Candidate{m->rank, pos, m->id});
      std::push_heap(heap.begin(), heap.end(), CandidateAfter{});
    }
  };
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), CandidateAfter{});
    Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[top.pos];
    if (!left.live || left.next < 0) continue;
    const int32_t right_pos = left.next;
    // A stale entry: the pair at this position changed since it was queued. As in HF, staleness is
    // judged by the id the pair would produce.
    const MergeInfo* m = merges_.get(left.id, sym[right_pos].id);
    if (!m || m->id != top.new_id) continue;
    left.id = top.new_id;
    left.next = sym[right_pos].next;
    sym[right_pos].live = false;
    if (left.next >= 0) sym[left.next].prev = top.pos;
    push(left.prev);
    push(top.pos);
  }
  for (int32_t k = 0; k >= 0; k = sym[k].next) out->push_back(sym[k].id);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (cfg_.ignore_merges) {
    if (auto it = vocab_.find(word); it != vocab_.end()) {
      out->push_back(it->second);
      return;
    }
  }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::shared_lock lock(cache_mu_);
    if (auto it = cache_.find(word); it != cache_.end()) {
      out->insert(out->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  size_t start = out->size();
  merge_word(word, out);
  if (cacheable) {
    std::unique_lock lock(cache_mu_);
    if (cache_.size() < kCacheCapacity)
      cache_.emplace(std::string(word), std::vector<int32_t>(out->begin() + start, out->end()));
  }
}

}  // namespace nanoflow::tok
