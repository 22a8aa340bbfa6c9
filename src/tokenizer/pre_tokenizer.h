// Pre-tokenizers of tokenizer.json, flattened into steps that split byte ranges of the normalized
// text (no step changes the text, so pieces are plain [begin, end) ranges). Supported: Split
// (regex or string pattern, every delimiter behavior, invert), ByteLevel (add_prefix_space=false;
// use_regex splits with the GPT-2 pattern), Digits. ByteLevel also marks the model as byte-level.
// Anything else is refused at load time with Error(kUnsupported).
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "regex.h"

namespace nanoflow::tok {

using Range = std::pair<size_t, size_t>;  // [begin, end) byte offsets

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct SplitStep {
  std::shared_ptr<Regex> regex;
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
};

// The pattern HF's ByteLevel pre-tokenizer uses when use_regex is true (GPT-2's).
inline constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class PreTokenizer {
 public:
  // `j` is the tokenizer.json "pre_tokenizer" value (may be null). *byte_level is set when a
  // ByteLevel step is present.
  static PreTokenizer from_json(const nlohmann::json& j, bool* byte_level);
  void add_split(SplitStep s) { steps_.push_back(std::move(s)); }
  // Splits text[0, size) into pieces; `scratch` is reused storage.
  void split(std::string_view text, std::vector<Range>* pieces, std::vector<Range>* scratch) const;

 private:
  std::vector<SplitStep> steps_;
};

}  // namespace nanoflow::tok
