// BPE model: merges applied by rank over a linked list of symbols with a min-heap, exactly in the
// order Hugging Face `tokenizers` applies them (lowest rank first, then leftmost; stale heap entries
// are detected by the id they would produce), plus a bounded cache of results per word.
//
// Two alphabets:
//  - byte-level (GPT-2 style): a word is raw bytes; every byte starts as the symbol of its
//    byte-level character. Vocabulary keys are stored as raw bytes (decoded from the byte-level
//    text of tokenizer.json), so no per-word character mapping happens at encode time.
//  - character level (SentencePiece-style): a word is UTF-8; each character starts as its vocab
//    symbol, else as <0xNN> byte tokens (byte_fallback), else as the unknown token (fuse_unk merges
//    runs of unknowns), else it is dropped (no unk token), as HF does.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flat_map.h"

namespace nanoflow::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using VocabMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

}  // namespace nanoflow::tok

#ifdef __GLIBCXX__
// libstdc++ caches hash codes in nodes only for hashers it deems slow; a custom hasher counts as
// fast, and then every bucket walk re-hashes whole strings (a quarter of tokenizer load time).
template <>
struct std::__is_fast_hash<nanoflow::tok::StringHash> : std::false_type {};
#endif

namespace nanoflow::tok {

struct BpeConfig {
  bool byte_level = false;
  bool byte_fallback = false;
  bool fuse_unk = false;
  bool ignore_merges = false;   // a word that is itself in the vocab is one token, unmerged
  std::optional<int32_t> unk_id;
  std::string continuing_subword_prefix;  // "" in every model we load; non-empty refused
  std::string end_of_word_suffix;
};

class BpeModel {
 public:
  // `vocab` keys are in the model alphabet (raw bytes when byte_level). merges: (left, right) pairs
  // of vocab ids in rank order. Throws Error(kBadFile) for merges whose pieces or result are not in
  // the vocabulary.
  BpeModel(BpeConfig cfg, VocabMap vocab, const std::vector<std::pair<int32_t, int32_t>>& merges,
           const std::vector<std::string>& id_to_key);
  // Appends the ids of `word` (in the model alphabet) to `out`.
  void encode_word(std::string_view word, std::vector<int32_t>* out) const;
  const BpeConfig& config() const { return cfg_; }

 private:
  void merge_word(std::string_view word, std::vector<int32_t>* out) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>* ids) const;

  BpeConfig cfg_;
  VocabMap vocab_;
  FlatPairMap merges_;                // (left id, right id) -> (rank, merged id)
  std::array<int32_t, 256> byte_sym_{};  // byte-level: byte -> id (-1 when absent)
  std::array<int32_t, 256> fallback_sym_{};  // <0xNN> -> id (-1 when absent)

  // Cache of merged words (HF caches words too). Bounded: once full, nothing new is inserted.
  static constexpr size_t kCacheCapacity = 1 << 16;
  static constexpr size_t kCacheMaxWordBytes = 256;
  mutable std::shared_mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> cache_;
};

}  // namespace nanoflow::tok
