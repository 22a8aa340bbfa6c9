// IncrementalDetokenizer: decodes a sliding window of ids twice (up to the last emitted token, and
// up to the newest) and emits the difference once it no longer ends in U+FFFD (an incomplete UTF-8
// character, or a byte-fallback run not finished yet). Both decodes start at the same token, so
// whole-text decoder rules (SentencePiece's Strip of the first space) cancel out; at the very
// start of the stream (no prompt) they apply exactly as in decode(all).
//
// With prompt ids, the last few prompt ids seed the window, so the first generated token is
// rendered as a continuation of the prompt (e.g. SentencePiece keeps its leading space).
// Known limit: a run of byte-fallback tokens whose bytes are valid UTF-8 followed by an invalid
// byte decodes to one U+FFFD per byte in decode(all) (HF's rule) but the valid part was already
// emitted here; only broken model output produces that.
#include <algorithm>

#include "tokenizer/tokenizer.h"
#include "utf8.h"

namespace nanoflow {
namespace {

constexpr size_t kPromptContext = 6;      // prompt ids kept as context for the first tokens
constexpr size_t kCompactThreshold = 1024;  // drop ids before the window beyond this many

bool ends_with_replacement(const std::string& s) {
  return s.size() >= tok::kReplacementChar.size() &&
         s.compare(s.size() - tok::kReplacementChar.size(), tok::kReplacementChar.size(), tok::kReplacementChar) == 0;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens,
                                               std::span<const int32_t> prompt_ids)
    : tok_(tok), skip_special_(skip_special_tokens) {
  size_t k = std::min(prompt_ids.size(), kPromptContext);
  ids_.assign(prompt_ids.end() - static_cast<std::ptrdiff_t>(k), prompt_ids.end());
  for (int32_t id : ids_) (void)tok_.id_to_token(id);  // validates the ids (kInvalidInput)
  prefix_offset_ = 0;
  read_offset_ = ids_.size();
}

std::string IncrementalDetokenizer::push(int32_t id) {
  (void)tok_.id_to_token(id);  // throws kInvalidInput for ids outside the vocabulary
  ids_.push_back(id);
  std::span<const int32_t> all(ids_);
  std::string prefix_text = tok_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  std::string new_text = tok_.decode(all.subspan(prefix_offset_), skip_special_);
  if (new_text.size() <= prefix_text.size() || ends_with_replacement(new_text) ||
      new_text.compare(0, prefix_text.size(), prefix_text) != 0)
    return {};
  std::string out = new_text.substr(prefix_text.size());
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  if (prefix_offset_ > kCompactThreshold) {
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_offset_));
    read_offset_ -= prefix_offset_;
    prefix_offset_ = 0;
  }
  return out;
}

std::string IncrementalDetokenizer::flush() {
  std::span<const int32_t> all(ids_);
  std::string prefix_text = tok_.decode(all.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_);
  std::string new_text = tok_.decode(all.subspan(prefix_offset_), skip_special_);
  prefix_offset_ = read_offset_ = ids_.size();
  if (new_text.size() <= prefix_text.size() || new_text.compare(0, prefix_text.size(), prefix_text) != 0) return {};
  return new_text.substr(prefix_text.size());
}

}  // namespace nanoflow
