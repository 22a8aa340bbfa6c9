#include "byte_level.h"

#include "utf8.h"

namespace nanoflow::tok {
namespace {

struct Tables {
  std::array<char32_t, 256> to_char{};
  std::array<std::string, 256> to_utf8;
  std::array<int16_t, 324> from_char{};  // code point (< 0x144) -> byte, -1 when not in the alphabet
  Tables() {
    from_char.fill(-1);
    auto printable = [](int b) {
      return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    };
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      char32_t c = printable(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      to_char[b] = c;
      utf8_append(to_utf8[b], c);
      from_char[c] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

char32_t byte_to_char(uint8_t b) { return tables().to_char[b]; }
const std::string& byte_to_utf8(uint8_t b) { return tables().to_utf8[b]; }

std::optional<std::string> byte_level_decode(std::string_view token) {
  const Tables& t = tables();
  std::string out;
  out.reserve(token.size());
  size_t i = 0;
  while (i < token.size()) {
    char32_t cp;
    size_t n = utf8_decode(token, i, &cp);
    if (cp >= t.from_char.size() || t.from_char[cp] < 0) return std::nullopt;
    out.push_back(static_cast<char>(t.from_char[cp]));
    i += n;
  }
  return out;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += byte_to_utf8(static_cast<uint8_t>(c));
  return out;
}

}  // namespace nanoflow::tok
