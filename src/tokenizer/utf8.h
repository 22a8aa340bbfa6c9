// UTF-8 helpers shared by the tokenizer pipeline (validation, code point iteration, lossy repair).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace nanoflow::tok {

// Length of the longest valid UTF-8 prefix of `s` (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
size_t utf8_valid_prefix(std::string_view s);
inline bool utf8_is_valid(std::string_view s) { return utf8_valid_prefix(s) == s.size(); }
// Throws Error(kInvalidInput) naming the byte offset of the first invalid sequence.
void utf8_require_valid(std::string_view s, std::string_view what);

// Decodes the code point at s[i] (s must be valid UTF-8); returns its byte length.
inline size_t utf8_decode(std::string_view s, size_t i, char32_t* cp) {
  auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) { *cp = b; return 1; }
  if (b < 0xE0) { *cp = ((b & 0x1Fu) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3Fu); return 2; }
  if (b < 0xF0) {
    *cp = ((b & 0x0Fu) << 12) | ((static_cast<uint8_t>(s[i + 1]) & 0x3Fu) << 6) |
          (static_cast<uint8_t>(s[i + 2]) & 0x3Fu);
    return 3;
  }
  *cp = ((b & 0x07u) << 18) | ((static_cast<uint8_t>(s[i + 1]) & 0x3Fu) << 12) |
        ((static_cast<uint8_t>(s[i + 2]) & 0x3Fu) << 6) | (static_cast<uint8_t>(s[i + 3]) & 0x3Fu);
  return 4;
}
// Byte length of the UTF-8 sequence that starts with lead byte b (1 for invalid leads).
inline size_t utf8_seq_len(uint8_t b) {
  return b < 0xC0 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 1;
}
void utf8_append(std::string& out, char32_t cp);

// Replaces every maximal invalid subpart with U+FFFD (the policy of Rust's String::from_utf8_lossy,
// which HF decoders use), so decode output is always valid UTF-8.
std::string utf8_lossy(std::string_view bytes);
// Length of the prefix of `bytes` that a lossy decoder can finalize: everything except a trailing
// sequence that is incomplete but could still become valid with more bytes.
size_t utf8_final_prefix(std::string_view bytes);

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace nanoflow::tok
