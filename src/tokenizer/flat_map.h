// Open-addressing hash map from a pair of token ids to (rank, merged id): the BPE merge table is
// probed once per adjacent symbol pair, so it is the hot lookup of encoding.
#pragma once
#include <cstdint>
#include <vector>

namespace nanoflow::tok {

struct MergeInfo {
  int32_t rank;
  int32_t id;
};

class FlatPairMap {
 public:
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
    mask_ = cap - 1;
  }
  // Inserts or overwrites (a later duplicate merge wins, like HF's HashMap collect).
  void put(int32_t a, int32_t b, MergeInfo v) {
    uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].k == kEmpty || slots_[i].k == k) {
        if (slots_[i].k == kEmpty) ++size_;
        slots_[i] = Slot{k, v};
        return;
      }
    }
  }
  const MergeInfo* get(int32_t a, int32_t b) const {
    if (slots_.empty()) return nullptr;
    uint64_t k = key(a, b);
    for (size_t i = hash(k) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.k == k) return &s.v;
      if (s.k == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are >= 0, so no real key is all ones
  struct Slot {
    uint64_t k;
    MergeInfo v;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return static_cast<size_t>(k);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace nanoflow::tok
