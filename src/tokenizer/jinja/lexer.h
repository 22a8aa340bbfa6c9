// Template source → tokens, with Jinja's whitespace control as transformers configures it
// (trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False):
//   - newlines (\r\n, \r, \n) become \n and one trailing newline of the source is dropped;
//   - `{%- ... -%}`, `{{- ... -}}`, `{#- ... -#}` strip all whitespace on that side;
//   - trim_blocks: the first \n after a `%}` or `#}` is dropped (`+%}` keeps it);
//   - lstrip_blocks: spaces/tabs between a line start and `{%` / `{#` are dropped (`{%+` keeps).
// Comments vanish; `{% raw %}...{% endraw %}` becomes plain text.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nanoflow::jinja {

enum class Tok : uint8_t {
  kData,        // template text, printed as is
  kBlockBegin,  // {%
  kBlockEnd,    // %}
  kVarBegin,    // {{
  kVarEnd,      // }}
  kName,        // identifier or keyword
  kString,      // text = the unescaped literal
  kInt,         // ival
  kFloat,       // fval
  kOp,          // text = operator
  kEof,
};

struct Token {
  Tok type;
  std::string text;
  int64_t ival = 0;
  double fval = 0;
  int line = 1;
};

// Throws Error(kBadFile) for lexical errors (unterminated tags/strings, bad characters), and
// Error(kUnsupported) for escapes we do not decode (\N{...}).
std::vector<Token> tokenize(const std::string& source);

}  // namespace nanoflow::jinja
