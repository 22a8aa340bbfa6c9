#include "added_vocab.h"

#include "utf8.h"

namespace nanoflow::tok {

bool is_unicode_whitespace(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

namespace {

// A "word" character for single_word: alphanumeric or '_' (approximated with ASCII + any
// non-ASCII letter-like code point that is not whitespace).
bool is_word_char(char32_t c) {
  if (c < 0x80) return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  return !is_unicode_whitespace(c);
}

char32_t last_char(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  char32_t c;
  utf8_decode(s, i, &c);
  return c;
}

}  // namespace

int32_t AddedMatcher::child(int32_t node, uint8_t b) const {
  for (auto [k, v] : nodes_[node].next)
    if (k == b) return v;
  return -1;
}

void AddedMatcher::add(const AddedToken& t) {
  if (t.content.empty()) return;
  int32_t node = 0;
  for (char ch : t.content) {
    auto b = static_cast<uint8_t>(ch);
    int32_t c = child(node, b);
    if (c < 0) {
      c = static_cast<int32_t>(nodes_.size());
      nodes_[node].next.emplace_back(b, c);
      nodes_.emplace_back();
    }
    node = c;
  }
  if (nodes_[node].token < 0) {  // the first token with a given content wins
    nodes_[node].token = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(t);
  }
  first_[static_cast<uint8_t>(t.content[0])] = true;
}

void AddedMatcher::split(std::string_view text, std::vector<Segment>* out) const {
  out->clear();
  size_t plain_start = 0;  // start of the pending plain-text segment
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (!first_[static_cast<uint8_t>(text[i])]) {
      ++i;
      continue;
    }
    // Longest token starting at i.
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t k = i; k < n; ++k) {
      node = child(node, static_cast<uint8_t>(text[k]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) best = nodes_[node].token, best_end = k + 1;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& t = tokens_[best];
    size_t start = i, stop = best_end;
    if (t.single_word) {
      bool start_ok = start == 0 || !is_word_char(last_char(text.substr(0, start)));
      bool stop_ok = true;
      if (stop < n) {
        char32_t c;
        utf8_decode(text, stop, &c);
        stop_ok = !is_word_char(c);
      }
      if (!start_ok || !stop_ok) {
        i = best_end;  // aho-corasick moves past a rejected match
        continue;
      }
    }
    if (t.lstrip) {
      while (start > plain_start) {
        size_t p = start - 1;
        while (p > plain_start && (static_cast<uint8_t>(text[p]) & 0xC0) == 0x80) --p;
        char32_t c;
        utf8_decode(text, p, &c);
        if (!is_unicode_whitespace(c)) break;
        start = p;
      }
    }
    if (t.rstrip) {
      while (stop < n) {
        char32_t c;
        size_t len = utf8_decode(text, stop, &c);
        if (!is_unicode_whitespace(c)) break;
        stop += len;
      }
    }
    if (start > plain_start) out->push_back(Segment{plain_start, start, -1});
    out->push_back(Segment{start, stop, t.id});
    plain_start = stop;
    i = stop;
  }
  if (plain_start < n) out->push_back(Segment{plain_start, n, -1});
}

}  // namespace nanoflow::tok
