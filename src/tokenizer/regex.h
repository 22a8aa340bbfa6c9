// PCRE2 regex (UTF + UCP, JIT) used by Split / ByteLevel pre-tokenizers. Compiled once at load; the
// per-thread match state (match data, JIT stack) is cached thread-locally so that encode() is
// const and thread-safe. Match limits bound the time a pathological pattern can take.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nanoflow::tok {

class Regex {
 public:
  // Throws Error(kBadFile) with PCRE2's message and offset when `pattern` does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Appends [begin, end) byte ranges of all non-overlapping matches in `text` (valid UTF-8), left to
  // right. Empty matches are skipped. Throws Error(kInvalidInput) when a match limit is hit.
  void find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* code_ = nullptr;  // pcre2_code_8*
  bool jit_ = false;
};

}  // namespace nanoflow::tok
