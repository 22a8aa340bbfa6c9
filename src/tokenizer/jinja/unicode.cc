#include "unicode.h"

#include <algorithm>
#include <clocale>
#include <cwctype>
#include <locale.h>

#include "core/error.h"

namespace nanoflow::jinja {

uint32_t utf8_decode(std::string_view s, size_t i, size_t* len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  auto cont = [&](size_t k) {
    return i + k < s.size() && (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
  };
  auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k]) & 0x3F); };
  *len = 1;
  if (b0 < 0x80) return b0;
  if (b0 >= 0xC2 && b0 < 0xE0 && cont(1)) {
    *len = 2;
    return ((b0 & 0x1Fu) << 6) | byte(1);
  }
  if (b0 >= 0xE0 && b0 < 0xF0 && cont(1) && cont(2)) {
    const uint32_t cp = ((b0 & 0x0Fu) << 12) | (byte(1) << 6) | byte(2);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
      *len = 3;
      return cp;
    }
  }
  if (b0 >= 0xF0 && b0 < 0xF5 && cont(1) && cont(2) && cont(3)) {
    const uint32_t cp = ((b0 & 0x07u) << 18) | (byte(1) << 12) | (byte(2) << 6) | byte(3);
    if (cp >= 0x10000 && cp <= 0x10FFFF) {
      *len = 4;
      return cp;
    }
  }
  return b0;  // malformed: one unit per byte
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

size_t cp_start_before(std::string_view s, size_t end) {
  // A code point ends at `end`: step back over at most 3 continuation bytes to a lead byte and
  // check that it decodes to exactly this span; otherwise the last byte is a unit of its own.
  size_t p = end - 1;
  while (p > 0 && end - p < 4 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
  size_t len;
  utf8_decode(s, p, &len);
  return p + len == end ? p : end - 1;
}

std::vector<size_t> cp_offsets(std::string_view s) {
  std::vector<size_t> off;
  off.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    off.push_back(i);
    size_t len;
    utf8_decode(s, i, &len);
    i += len;
  }
  off.push_back(s.size());
  return off;
}

size_t cp_length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size(); ++n) {
    size_t len;
    utf8_decode(s, i, &len);
    i += len;
  }
  return n;
}

std::vector<uint32_t> to_code_points(std::string_view s) {
  std::vector<uint32_t> cps;
  for (size_t i = 0; i < s.size();) {
    size_t len;
    cps.push_back(utf8_decode(s, i, &len));
    i += len;
  }
  return cps;
}

bool py_isspace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool py_is_linebreak(uint32_t cp) {
  return cp == '\n' || cp == '\r' || cp == 0x0B || cp == 0x0C || (cp >= 0x1C && cp <= 0x1E) ||
         cp == 0x85 || cp == 0x2028 || cp == 0x2029;
}

std::string py_strip(std::string_view s, StripSide side, const std::optional<std::string>& chars) {
  std::vector<uint32_t> set;
  if (chars) set = to_code_points(*chars);
  auto strip_it = [&](uint32_t cp) {
    if (!chars) return py_isspace(cp);
    for (uint32_t c : set)
      if (c == cp) return true;
    return false;
  };
  // Walk code points in from both ends without decoding the middle (this runs on every message).
  size_t lo = 0, hi = s.size(), len;
  if (side != StripSide::kRight)
    while (lo < hi && strip_it(utf8_decode(s, lo, &len))) lo += len;
  if (side != StripSide::kLeft)
    while (hi > lo) {
      const size_t start = cp_start_before(s, hi);
      if (!strip_it(utf8_decode(s, start, &len))) break;
      hi = start;
    }
  return std::string(s.substr(lo, hi - lo));
}

std::vector<std::string> py_split(std::string_view s, const std::optional<std::string>& sep,
                                  int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (maxsplit < 0) maxsplit = INT64_MAX;
  if (sep) {
    if (sep->empty()) throw Error(ErrorKind::kInvalidInput, "chat template: split(): empty separator");
    if (!from_right) {
      size_t pos = 0;
      while (maxsplit-- > 0) {
        const size_t hit = s.find(*sep, pos);
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(pos, hit - pos));
        pos = hit + sep->size();
      }
      parts.emplace_back(s.substr(pos));
    } else {
      size_t end = s.size();
      while (maxsplit-- > 0 && end >= sep->size()) {
        const size_t hit = s.rfind(*sep, end - sep->size());
        if (hit == std::string_view::npos) break;
        parts.emplace_back(s.substr(hit + sep->size(), end - hit - sep->size()));
        end = hit;
      }
      parts.emplace_back(s.substr(0, end));
      std::reverse(parts.begin(), parts.end());
    }
    return parts;
  }
  // Whitespace split: runs of whitespace separate, no empty strings; the remainder after maxsplit
  // keeps its inner whitespace but not the run that separated it.
  const std::vector<size_t> off = cp_offsets(s);
  const size_t n = off.size() - 1;
  size_t len;
  auto space = [&](size_t k) { return py_isspace(utf8_decode(s, off[k], &len)); };
  if (!from_right) {
    size_t k = 0;
    while (true) {
      while (k < n && space(k)) ++k;
      if (k == n) break;
      if (maxsplit == 0) {  // the remainder keeps its trailing whitespace, as in Python
        parts.emplace_back(s.substr(off[k]));
        break;
      }
      size_t e = k;
      while (e < n && !space(e)) ++e;
      parts.emplace_back(s.substr(off[k], off[e] - off[k]));
      --maxsplit;
      k = e;
    }
  } else {
    size_t k = n;
    while (true) {
      while (k > 0 && space(k - 1)) --k;
      if (k == 0) break;
      if (maxsplit == 0) {  // the remainder keeps its leading whitespace
        parts.emplace_back(s.substr(0, off[k]));
        break;
      }
      size_t b = k;
      while (b > 0 && !space(b - 1)) --b;
      parts.emplace_back(s.substr(off[b], off[k] - off[b]));
      --maxsplit;
      k = b;
    }
    std::reverse(parts.begin(), parts.end());
  }
  return parts;
}

std::vector<std::string> py_splitlines(std::string_view s) {
  std::vector<std::string> lines;
  size_t start = 0, i = 0, len;
  while (i < s.size()) {
    const uint32_t cp = utf8_decode(s, i, &len);
    if (py_is_linebreak(cp)) {
      lines.emplace_back(s.substr(start, i - start));
      i += len;
      if (cp == '\r' && i < s.size() && s[i] == '\n') ++i;
      start = i;
    } else {
      i += len;
    }
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

namespace {
locale_t utf8_locale() {
  static locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(0));
    return l;
  }();
  return loc;
}

template <class F>
std::string map_cps(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  size_t len;
  for (size_t i = 0; i < s.size(); i += len) {
    const uint32_t cp = utf8_decode(s, i, &len);
    if (len == 1 && cp >= 0x80) {
      out += s[i];  // malformed byte: keep
      continue;
    }
    utf8_append(out, f(cp));
  }
  return out;
}

uint32_t upper_cp(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'a' && cp <= 'z') ? cp - 32 : cp;
  locale_t l = utf8_locale();
  return l ? static_cast<uint32_t>(towupper_l(static_cast<wint_t>(cp), l)) : cp;
}
uint32_t lower_cp(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  locale_t l = utf8_locale();
  return l ? static_cast<uint32_t>(towlower_l(static_cast<wint_t>(cp), l)) : cp;
}
}  // namespace

std::string py_upper(std::string_view s) { return map_cps(s, upper_cp); }
std::string py_lower(std::string_view s) { return map_cps(s, lower_cp); }

std::string py_capitalize(std::string_view s) {
  if (s.empty()) return {};
  size_t len;
  utf8_decode(s, 0, &len);
  return py_upper(s.substr(0, len)) + py_lower(s.substr(len));
}

}  // namespace nanoflow::jinja
