// GPT-2 byte-level alphabet: each byte maps to one printable code point, so BPE vocabularies are
// text. Printable Latin-1 bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68
// bytes map to U+0100.. in byte order (space -> 'Ġ' U+0120, '\n' -> 'Ċ' U+010A).
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nanoflow::tok {

// Code point that byte b maps to.
char32_t byte_to_char(uint8_t b);
// UTF-8 of byte_to_char(b), precomputed.
const std::string& byte_to_utf8(uint8_t b);
// Inverse: the raw bytes a byte-level token string stands for; nullopt when a character of `token`
// is not in the alphabet (e.g. an added token written in plain text).
std::optional<std::string> byte_level_decode(std::string_view token);
// Maps raw bytes to the byte-level alphabet (what a vocabulary entry looks like).
std::string byte_level_encode(std::string_view bytes);

}  // namespace nanoflow::tok
