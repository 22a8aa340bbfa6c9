#include "lexer.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/error.h"
#include "unicode.h"

namespace nanoflow::jinja {
namespace {

[[noreturn]] void lex_fail(ErrorKind kind, int line, const std::string& msg) {
  throw Error(kind, "chat template: line " + std::to_string(line) + ": " + msg);
}

// Jinja splits the source on \r\n, \r, \n, rejoins with \n and (keep_trailing_newline=False)
// drops the empty last line, i.e. one trailing newline.
std::string normalize_newlines(const std::string& raw) {
  std::string s;
  s.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      s += '\n';
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else {
      s += raw[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

bool starts_with_at(const std::string& s, size_t pos, const char* lit) {
  const size_t n = std::strlen(lit);
  return pos + n <= s.size() && s.compare(pos, n, lit) == 0;
}

// Python's regex \s (Unicode whitespace) at pos: its byte length, 0 if not whitespace.
size_t ws_len(const std::string& s, size_t pos) {
  if (pos >= s.size()) return 0;
  size_t len;
  const uint32_t cp = utf8_decode(s, pos, &len);
  return py_isspace(cp) ? len : 0;
}

size_t skip_ws(const std::string& s, size_t pos) {
  while (size_t l = ws_len(s, pos)) pos += l;
  return pos;
}

bool all_ws(const std::string& s, size_t from) {
  if (from >= s.size()) return false;  // \s+ needs at least one character
  for (size_t p = from; p < s.size();) {
    const size_t l = ws_len(s, p);
    if (!l) return false;
    p += l;
  }
  return true;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }

// Python's `unicode-escape` decoding of a string literal body (what Jinja applies).
std::string unescape(const std::string& body, int line) {
  std::string out;
  auto hex = [&](size_t at, int n) -> uint32_t {
    if (at + n > body.size()) lex_fail(ErrorKind::kBadFile, line, "truncated \\x/\\u escape in string");
    uint32_t v = 0;
    for (int k = 0; k < n; ++k) {
      const char c = body[at + k];
      v <<= 4;
      if (is_digit(c)) v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else lex_fail(ErrorKind::kBadFile, line, "bad hex digit in string escape");
    }
    return v;
  };
  for (size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i >= body.size()) lex_fail(ErrorKind::kBadFile, line, "string ends with a backslash");
    const char e = body[i];
    switch (e) {
      case '\n': break;  // line continuation
      case '\\': out += '\\'; break;
      case '\'': out += '\''; break;
      case '"': out += '"'; break;
      case 'a': out += '\a'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'v': out += '\v'; break;
      case 'x': utf8_append(out, hex(i + 1, 2)); i += 2; break;
      case 'u':
      case 'U': {
        const int n = e == 'u' ? 4 : 8;
        const uint32_t cp = hex(i + 1, n);
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
          lex_fail(ErrorKind::kUnsupported, line, "string escape is a surrogate or beyond U+10FFFF");
        utf8_append(out, cp);
        i += n;
        break;
      }
      case 'N': lex_fail(ErrorKind::kUnsupported, line, "\\N{...} escapes are not supported");
      default:
        if (e >= '0' && e <= '7') {
          uint32_t v = 0;
          int n = 0;
          while (n < 3 && i < body.size() && body[i] >= '0' && body[i] <= '7') {
            v = v * 8 + (body[i] - '0');
            ++i;
            ++n;
          }
          --i;
          utf8_append(out, v);
        } else if (static_cast<unsigned char>(e) >= 0x80) {
          lex_fail(ErrorKind::kUnsupported, line, "backslash before a non-ASCII character in a string");
        } else {
          out += '\\';  // unknown escapes stay as written
          out += e;
        }
    }
  }
  return out;
}

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {}

  std::vector<Token> run() {
    while (pos_ < s_.size()) {
      const size_t tag = find_tag(pos_);
      if (tag == std::string::npos) {
        emit_data(s_.substr(pos_));
        advance_to(s_.size());
        break;
      }
      std::string text = s_.substr(pos_, tag - pos_);
      const char kind = s_[tag + 1];  // '{', '%' or '#'
      char sign = 0;
      if (tag + 2 < s_.size() && (s_[tag + 2] == '-' || s_[tag + 2] == '+')) sign = s_[tag + 2];
      if (sign == '-') {
        text = py_strip(text, StripSide::kRight, std::nullopt);
      } else if (sign != '+' && kind != '{') {
        text = lstrip_line(text);
      }
      emit_data(std::move(text));
      advance_to(tag);
      size_t p = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        comment(p);
      } else if (kind == '%' && raw_begin(p)) {
        // handled
      } else {
        tag_body(p, kind == '%');
      }
    }
    Token eof{Tok::kEof, "", 0, 0, line_};
    toks_.push_back(eof);
    return std::move(toks_);
  }

 private:
  size_t find_tag(size_t from) const {
    for (size_t i = s_.find('{', from); i != std::string::npos; i = s_.find('{', i + 1)) {
      if (i + 1 < s_.size() && (s_[i + 1] == '{' || s_[i + 1] == '%' || s_[i + 1] == '#')) return i;
    }
    return std::string::npos;
  }

  // lstrip_blocks: drop the spaces between the last line start and the tag.
  std::string lstrip_line(const std::string& text) const {
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
    if ((l_pos > 0 || line_starting_) && all_ws(text, l_pos)) return text.substr(0, l_pos);
    return text;
  }

  void emit_data(std::string text) {
    if (text.empty()) return;
    Token t{Tok::kData, std::move(text), 0, 0, line_};
    toks_.push_back(std::move(t));
  }

  void advance_to(size_t p) {
    for (size_t i = pos_; i < p; ++i)
      if (s_[i] == '\n') ++line_;
    pos_ = p;
  }

  // Ends a tag at `end` (one past the match); the next text starts there.
  void finish_tag(size_t end) {
    line_starting_ = end > 0 && s_[end - 1] == '\n';
    advance_to(end);
  }

  // Closing of a block/comment: `+X}` keeps, `-X}` strips all following whitespace, `X}` drops
  // one newline (trim_blocks). Returns one past the match, or npos.
  size_t block_close(size_t p, char c) const {
    const char close[3] = {c, '}', 0};
    const char plus[4] = {'+', c, '}', 0};
    const char minus[4] = {'-', c, '}', 0};
    if (starts_with_at(s_, p, plus)) return p + 3;
    if (starts_with_at(s_, p, minus)) return skip_ws(s_, p + 3);
    if (starts_with_at(s_, p, close)) {
      size_t e = p + 2;
      if (e < s_.size() && s_[e] == '\n') ++e;
      return e;
    }
    return std::string::npos;
  }

  void comment(size_t p) {
    for (; p < s_.size(); ++p) {
      const size_t end = block_close(p, '#');
      if (end != std::string::npos) {
        finish_tag(end);
        return;
      }
    }
    lex_fail(ErrorKind::kBadFile, line_, "missing end of comment tag");
  }

  // `{% raw %}` ... `{% endraw %}`: the body is text. Returns false if this is not a raw tag.
  bool raw_begin(size_t p) {
    size_t q = skip_ws(s_, p);
    if (!starts_with_at(s_, q, "raw")) return false;
    q = skip_ws(s_, q + 3);
    size_t body;
    if (starts_with_at(s_, q, "-%}")) body = skip_ws(s_, q + 3);
    else if (starts_with_at(s_, q, "%}")) body = q + 2;
    else return false;
    line_starting_ = s_[body - 1] == '\n';
    for (size_t t = s_.find("{%", body); t != std::string::npos; t = s_.find("{%", t + 1)) {
      char sign = 0;
      size_t r = t + 2;
      if (r < s_.size() && (s_[r] == '-' || s_[r] == '+')) sign = s_[r++];
      r = skip_ws(s_, r);
      if (!starts_with_at(s_, r, "endraw")) continue;
      r = skip_ws(s_, r + 6);
      const size_t end = block_close(r, '%');
      if (end == std::string::npos) continue;
      std::string text = s_.substr(body, t - body);
      if (sign == '-') text = py_strip(text, StripSide::kRight, std::nullopt);
      else if (sign != '+') text = lstrip_line(text);
      emit_data(std::move(text));
      finish_tag(end);
      return true;
    }
    lex_fail(ErrorKind::kBadFile, line_, "missing end of raw directive");
  }

  void push(Tok type, std::string text = {}) {
    Token t{type, std::move(text), 0, 0, line_};
    toks_.push_back(std::move(t));
  }

  // Expression tokens of a `{% %}` or `{{ }}` tag, up to and including its end.
  void tag_body(size_t p, bool block) {
    push(block ? Tok::kBlockBegin : Tok::kVarBegin);
    std::vector<char> brackets;  // open (, [, { awaiting their close
    while (true) {
      // Line numbers inside tags only matter for messages: count them as we pass.
      p = skip_ws_counting(p);
      if (p >= s_.size()) lex_fail(ErrorKind::kBadFile, line_, block ? "missing %}" : "missing }}");
      if (brackets.empty()) {
        size_t end = std::string::npos;
        if (block) {
          end = block_close(p, '%');
        } else if (starts_with_at(s_, p, "-}}")) {
          end = skip_ws(s_, p + 3);
        } else if (starts_with_at(s_, p, "}}")) {
          end = p + 2;
        }
        if (end != std::string::npos) {
          pos_ = p;
          push(block ? Tok::kBlockEnd : Tok::kVarEnd);
          finish_tag(end);
          return;
        }
      }
      p = expr_token(p, brackets);
    }
  }

  size_t skip_ws_counting(size_t p) {
    const size_t e = skip_ws(s_, p);
    pos_ = p;
    advance_to(e);
    return e;
  }

  size_t expr_token(size_t p, std::vector<char>& brackets) {
    const char c = s_[p];
    if (is_digit(c)) return number(p);
    if (is_name_start(c)) {
      size_t e = p;
      while (e < s_.size() && is_name_char(s_[e])) ++e;
      push(Tok::kName, s_.substr(p, e - p));
      return e;
    }
    if (c == '\'' || c == '"') {
      size_t e = p + 1;
      while (e < s_.size() && s_[e] != c) e += (s_[e] == '\\') ? 2 : 1;
      if (e >= s_.size()) lex_fail(ErrorKind::kBadFile, line_, "unterminated string literal");
      const int start_line = line_;
      Token t{Tok::kString, unescape(s_.substr(p + 1, e - p - 1), start_line), 0, 0, start_line};
      toks_.push_back(std::move(t));
      pos_ = p;
      advance_to(e + 1);
      return e + 1;
    }
    static const char* kOps2[] = {"//", "**", "==", "!=", ">=", "<="};
    for (const char* op : kOps2)
      if (starts_with_at(s_, p, op)) {
        push(Tok::kOp, op);
        return p + 2;
      }
    if (std::strchr("+-/*%~[](){}><=.:|,;", c) && c != 0) {
      if (c == '(' || c == '[' || c == '{') brackets.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      if (c == ')' || c == ']' || c == '}') {
        if (brackets.empty()) lex_fail(ErrorKind::kBadFile, line_, std::string("unexpected '") + c + "'");
        if (brackets.back() != c)
          lex_fail(ErrorKind::kBadFile, line_,
                   std::string("unexpected '") + c + "', expected '" + brackets.back() + "'");
        brackets.pop_back();
      }
      push(Tok::kOp, std::string(1, c));
      return p + 1;
    }
    if (static_cast<unsigned char>(c) >= 0x80)
      lex_fail(ErrorKind::kUnsupported, line_, "non-ASCII identifiers are not supported");
    lex_fail(ErrorKind::kBadFile, line_, std::string("unexpected character '") + c + "'");
  }

  // Digits with optional '_' separators between digits: (\d+_)*\d+
  size_t digits(size_t p) const {
    if (p >= s_.size() || !is_digit(s_[p])) return std::string::npos;
    size_t e = p;
    while (true) {
      while (e < s_.size() && is_digit(s_[e])) ++e;
      if (e + 1 < s_.size() && s_[e] == '_' && is_digit(s_[e + 1])) {
        ++e;
        continue;
      }
      return e;
    }
  }

  static std::string strip_underscores(const std::string& t) {
    std::string r;
    for (char ch : t)
      if (ch != '_') r += ch;
    return r;
  }

  size_t number(size_t p) {
    // Float: digits ('.' digits)? ([eE] [+-]? digits)?, needing a fraction or an exponent, and not
    // right after a '.' (so `x.0.1` is attribute access).
    const bool after_dot = p > 0 && s_[p - 1] == '.';
    const size_t int_end = digits(p);
    if (!after_dot) {
      size_t e = int_end;
      bool is_float = false;
      if (e < s_.size() && s_[e] == '.') {
        const size_t f = digits(e + 1);
        if (f != std::string::npos) {
          e = f;
          is_float = true;
        }
      }
      if (e < s_.size() && (s_[e] == 'e' || s_[e] == 'E')) {
        size_t x = e + 1;
        if (x < s_.size() && (s_[x] == '+' || s_[x] == '-')) ++x;
        const size_t f = digits(x);
        if (f != std::string::npos) {
          e = f;
          is_float = true;
        }
      }
      if (is_float) {
        Token t{Tok::kFloat, s_.substr(p, e - p), 0, 0, line_};
        t.fval = std::strtod(strip_underscores(t.text).c_str(), nullptr);
        toks_.push_back(std::move(t));
        return e;
      }
    }
    // Integer: 0b.., 0o.., 0x.., [1-9](_?\d)*, 0(_?0)*
    size_t e = p;
    int base = 10;
    std::string body;
    if (s_[p] == '0' && p + 1 < s_.size() && std::strchr("bBoOxX", s_[p + 1]) && s_[p + 1] != 0) {
      const char b = static_cast<char>(s_[p + 1] | 0x20);
      base = b == 'b' ? 2 : b == 'o' ? 8 : 16;
      auto ok = [&](char ch) {
        if (base == 2) return ch == '0' || ch == '1';
        if (base == 8) return ch >= '0' && ch <= '7';
        return is_digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
      };
      size_t q = p + 2;
      while (q < s_.size()) {
        if (ok(s_[q])) body += s_[q++];
        else if (s_[q] == '_' && q + 1 < s_.size() && ok(s_[q + 1])) ++q;
        else break;
      }
      if (!body.empty()) e = q;
      else base = 10;
    }
    if (base == 10) {
      body.clear();
      if (s_[p] == '0') {
        e = p + 1;
        body = "0";
        while (true) {
          if (e < s_.size() && s_[e] == '0') ++e;
          else if (e + 1 < s_.size() && s_[e] == '_' && s_[e + 1] == '0') e += 2;
          else break;
        }
      } else {
        e = int_end;
        body = strip_underscores(s_.substr(p, e - p));
      }
    }
    errno = 0;
    char* endp = nullptr;
    const long long v = std::strtoll(body.c_str(), &endp, base);
    if (errno == ERANGE) lex_fail(ErrorKind::kUnsupported, line_, "integer literal beyond int64");
    Token t{Tok::kInt, s_.substr(p, e - p), static_cast<int64_t>(v), 0, line_};
    toks_.push_back(std::move(t));
    return e;
  }

  std::string s_;
  size_t pos_ = 0;
  int line_ = 1;
  bool line_starting_ = true;  // the previous tag ended with a newline (or we are at the start)
  std::vector<Token> toks_;
};

}  // namespace

std::vector<Token> tokenize(const std::string& source) { return Lexer(normalize_newlines(source)).run(); }

}  // namespace nanoflow::jinja
