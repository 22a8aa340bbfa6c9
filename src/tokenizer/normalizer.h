// Normalizers of tokenizer.json, flattened into a list of steps (a "Sequence" is just its steps).
// Supported: NFC (ICU), Prepend, Replace (string or regex pattern). Anything else is refused at
// load time with Error(kUnsupported), never silently ignored.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "regex.h"

namespace nanoflow::tok {

struct NormalizerStep {
  enum class Kind { kNfc, kPrepend, kReplace };
  Kind kind;
  std::string text;                // Prepend: the prefix. Replace: the replacement.
  std::string pattern;             // Replace with a string pattern
  std::shared_ptr<Regex> regex;    // Replace with a regex pattern
};

class Normalizer {
 public:
  // `j` is the tokenizer.json "normalizer" value (may be null).
  static Normalizer from_json(const nlohmann::json& j);
  void add(NormalizerStep s) { steps_.push_back(std::move(s)); }
  bool empty() const { return steps_.empty(); }
  // Normalizes `s` in place (s is valid UTF-8 and stays so).
  void apply(std::string& s) const;

 private:
  std::vector<NormalizerStep> steps_;
};

// NFC via ICU; fast path for text that is already NFC (e.g. all ASCII).
void nfc_in_place(std::string& s);

}  // namespace nanoflow::tok
