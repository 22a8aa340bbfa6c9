#define PCRE2_CODE_UNIT_WIDTH 8
#include "unicode_compat.h"

#include <pcre2.h>

#include <cstdint>
#include <cstdio>
#include <span>

#include "core/error.h"
#include "utf8.h"

namespace nanoflow::tok {
namespace {

struct CodeRange {
  uint32_t lo, hi;
};
#include "unicode_classes.inc"

void append_range(std::string& out, uint32_t lo, uint32_t hi) {
  char buf[48];
  if (lo == hi) std::snprintf(buf, sizeof(buf), "\\x{%X}", lo);
  else std::snprintf(buf, sizeof(buf), "\\x{%X}-\\x{%X}", lo, hi);
  out += buf;
}

std::string class_content(std::span<const CodeRange> rs) {
  std::string out;
  for (auto r : rs) append_range(out, r.lo, r.hi);
  return out;
}

// Ranges of `hf` that PCRE2's `\p{X}` does not match, as class content.
std::string missing_from_pcre2(std::span<const CodeRange> hf, const char* property) {
  int err = 0;
  PCRE2_SIZE off = 0;
  std::string pat = std::string("\\A") + property + "\\z";
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pat.c_str()), pat.size(), PCRE2_UTF | PCRE2_UCP,
                                   &err, &off, nullptr);
  NF_CHECK(code) << "PCRE2 cannot compile " << pat;
  pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
  std::string out;
  int64_t run_lo = -1, run_hi = -1;
  std::string buf;
  for (auto r : hf) {
    for (uint32_t cp = r.lo; cp <= r.hi; ++cp) {
      buf.clear();
      utf8_append(buf, cp);
      bool has = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(buf.data()), buf.size(), 0, 0, md, nullptr) >= 0;
      if (has) continue;
      if (run_hi >= 0 && cp == run_hi + 1) {
        run_hi = cp;
      } else {
        if (run_lo >= 0) append_range(out, static_cast<uint32_t>(run_lo), static_cast<uint32_t>(run_hi));
        run_lo = run_hi = cp;
      }
    }
  }
  if (run_lo >= 0) append_range(out, static_cast<uint32_t>(run_lo), static_cast<uint32_t>(run_hi));
  pcre2_match_data_free(md);
  pcre2_code_free(code);
  return out;
}

struct Classes {
  std::string space;   // class content of HF's \s
  std::string letter;  // \p{L} + what PCRE2 lacks
  std::string number;  // \p{N} + what PCRE2 lacks
  Classes()
      : space(class_content(kHfSpace)),
        letter("\\p{L}" + missing_from_pcre2(kHfLetter, "\\p{L}")),
        number("\\p{N}" + missing_from_pcre2(kHfNumber, "\\p{N}")) {}
};

const Classes& classes() {
  static const Classes c;  // thread-safe one-time init (~140k single-character matches)
  return c;
}

}  // namespace

std::string translate_hf_regex(std::string_view p) {
  const Classes& c = classes();
  std::string out;
  out.reserve(p.size() + 256);
  int class_depth = 0;  // 1 inside [...] (POSIX [:x:] inside a class is copied verbatim)
  for (size_t i = 0; i < p.size(); ++i) {
    char ch = p[i];
    if (ch == '\\' && i + 1 < p.size()) {
      char e = p[i + 1];
      const std::string* content = nullptr;
      bool negated = false;
      size_t len = 2;
      if (e == 's' || e == 'S') {
        content = &c.space;
        negated = e == 'S';
      } else if ((e == 'p' || e == 'P') && p.substr(i + 2, 3) == "{L}") {
        content = &c.letter, negated = e == 'P', len = 5;
      } else if ((e == 'p' || e == 'P') && p.substr(i + 2, 3) == "{N}") {
        content = &c.number, negated = e == 'P', len = 5;
      }
      if (content && class_depth == 0) {
        out += negated ? "[^" : "[";
        out += *content;
        out += "]";
        i += len - 1;
        continue;
      }
      if (content && !negated) {  // inside a class: splice the members in
        out += *content;
        i += len - 1;
        continue;
      }
      out += ch;  // any other escape (or a negated one inside a class) stays as written
      out += e;
      ++i;
      continue;
    }
    if (ch == '[') {
      if (class_depth > 0 && p.substr(i, 2) == "[:") {
        size_t end = p.find(":]", i + 2);
        if (end != std::string_view::npos) {
          out.append(p.substr(i, end + 2 - i));
          i = end + 1;
          continue;
        }
      }
      out += ch;
      if (class_depth > 0) continue;  // '[' inside a class is a literal
      ++class_depth;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      if (i + 1 < p.size() && p[i + 1] == ']') out += p[++i];
      continue;
    }
    if (ch == ']' && class_depth > 0) --class_depth;
    out += ch;
  }
  return out;
}

}  // namespace nanoflow::tok
