// Decoders of tokenizer.json, applied to the token strings of the ids being decoded, with HF's
// semantics: each step maps the list of token strings to a new list; the result is concatenated.
// Supported: ByteLevel, Replace (string pattern), ByteFallback, Fuse, Strip, Sequence. A missing
// decoder joins tokens with " " as HF does. Others are refused at load with Error(kUnsupported).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace nanoflow::tok {

struct DecoderStep {
  enum class Kind { kByteLevel, kReplace, kByteFallback, kFuse, kStrip };
  Kind kind;
  std::string pattern, content;  // Replace: pattern -> content. Strip: content is one character.
  int start = 0, stop = 0;       // Strip: how many `content` characters to cut at each end
};

class Decoder {
 public:
  static Decoder from_json(const nlohmann::json& j);
  void add(DecoderStep s) {
    steps_.push_back(std::move(s));
    present_ = true;
  }
  bool has_decoder() const { return present_; }
  std::string decode(std::vector<std::string> tokens) const;
  // True when the steps are ones whose output for a token does not depend on its neighbours except
  // through the final UTF-8 repair and Strip at the very start (what the incremental detokenizer
  // relies on).
  const std::vector<DecoderStep>& steps() const { return steps_; }

 private:
  std::vector<DecoderStep> steps_;
  bool present_ = false;
};

}  // namespace nanoflow::tok
