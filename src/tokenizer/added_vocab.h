// Added tokens (special and user-defined): matched in the text before normalization and BPE and
// never split, leftmost-longest as HF's AddedVocabulary does (aho-corasick LeftmostLongest), with
// its lstrip / rstrip / single_word rules. A byte trie keeps matching linear in practice.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace nanoflow::tok {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false, rstrip = false, single_word = false;
  bool normalized = false;  // matched after normalization (HF: non-special tokens default to true)
};

// One segment of the input: an added token, or plain text to normalize and tokenize.
struct Segment {
  size_t begin, end;
  int32_t id;  // -1 for plain text
};

class AddedMatcher {
 public:
  void add(const AddedToken& t);
  bool empty() const { return tokens_.empty(); }
  // Splits text into segments covering it in order (empty plain segments omitted).
  void split(std::string_view text, std::vector<Segment>* out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // byte -> child node (few children)
    int32_t token = -1;                              // index into tokens_ when a token ends here
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_{Node{}};
  std::vector<AddedToken> tokens_;
  std::array<bool, 256> first_{};  // bytes that can start a token
};

// Unicode White_Space (Rust's char::is_whitespace), used by lstrip/rstrip.
bool is_unicode_whitespace(char32_t c);

}  // namespace nanoflow::tok
