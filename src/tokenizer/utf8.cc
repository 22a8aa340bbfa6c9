#include "utf8.h"

#include "core/error.h"

namespace nanoflow::tok {
namespace {

// Length of a valid sequence at s[i], or 0 with *bad_len = length of the maximal invalid subpart
// (at least 1), or 0 with *bad_len = 0 when the input ends inside a sequence that is valid so far.
size_t valid_seq_at(std::string_view s, size_t i, size_t* bad_len) {
  auto at = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b = at(i);
  if (b < 0x80) return 1;
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    need = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;       // no overlongs
    else if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;
    else if (b == 0xF4) hi = 0x8F;  // <= U+10FFFF
  } else {
    *bad_len = 1;
    return 0;
  }
  for (size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) {
      *bad_len = 0;  // truncated, but valid so far
      return 0;
    }
    uint8_t c = at(i + k);
    uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) {
      *bad_len = k;
      return 0;
    }
  }
  return need;
}

}  // namespace

size_t utf8_valid_prefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<uint8_t>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t bad = 0;
    size_t n = valid_seq_at(s, i, &bad);
    if (n == 0) return i;
    i += n;
  }
  return i;
}

void utf8_require_valid(std::string_view s, std::string_view what) {
  size_t n = utf8_valid_prefix(s);
  if (n != s.size())
    NF_THROW(kInvalidInput) << what << " is not valid UTF-8 (first invalid byte 0x" << std::hex
                            << static_cast<int>(static_cast<uint8_t>(s[n])) << std::dec << " at offset "
                            << n << ")";
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = 0;
    size_t n = valid_seq_at(s, i, &bad);
    if (n > 0) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append(kReplacementChar);
      i += bad == 0 ? s.size() - i : bad;  // a truncated tail is one maximal subpart
    }
  }
  return out;
}

size_t utf8_final_prefix(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t bad = 0;
    size_t n = valid_seq_at(s, i, &bad);
    if (n > 0) i += n;
    else if (bad > 0) i += bad;
    else return i;  // incomplete tail: not final yet
  }
  return i;
}

}  // namespace nanoflow::tok
