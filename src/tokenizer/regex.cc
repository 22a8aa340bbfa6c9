#define PCRE2_CODE_UNIT_WIDTH 8
#include "regex.h"

#include <pcre2.h>

#include "core/error.h"
#include "unicode_compat.h"

namespace nanoflow::tok {
namespace {

// Bounds for one match attempt. The patterns of real tokenizers need a handful of backtracking
// steps per character; these limits only stop catastrophic backtracking (a 1 MB input of a
// tokenizer's own pattern stays far below them, tested in tokenizer_bad_input_test).
constexpr uint32_t kMatchLimit = 50'000'000;
constexpr uint32_t kDepthLimit = 1'000'000;
constexpr size_t kJitStackMax = size_t{16} << 20;

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof(buf));
  return reinterpret_cast<const char*>(buf);
}

// Per-thread match state shared by all Regex objects (JIT stacks and match data are not thread-safe).
struct MatchState {
  pcre2_match_data* md = nullptr;
  pcre2_match_context* mctx = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;
  MatchState() {
    md = pcre2_match_data_create(1, nullptr);
    mctx = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, kJitStackMax, nullptr);
    NF_CHECK(md && mctx && jit_stack) << "PCRE2 allocation failed";
    pcre2_set_match_limit(mctx, kMatchLimit);
    pcre2_set_depth_limit(mctx, kDepthLimit);
    pcre2_jit_stack_assign(mctx, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(mctx);
    pcre2_match_data_free(md);
  }
};

MatchState& match_state() {
  thread_local MatchState state;
  return state;
}

}  // namespace

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  if (pattern.size() > 64 * 1024) NF_THROW(kBadFile) << "pre-tokenizer regex longer than 64 KiB";
  int err = 0;
  PCRE2_SIZE err_off = 0;
  pcre2_compile_context* cctx = pcre2_compile_context_create(nullptr);
  // Patterns come from files: cap their nesting so compile time and memory stay bounded.
  pcre2_set_parens_nest_limit(cctx, 64);
  pcre2_set_max_pattern_length(cctx, 1024 * 1024);  // after translation
  // HF's engine (Oniguruma) and PCRE2 disagree on \s and on newer Unicode letters/numbers.
  const std::string translated = translate_hf_regex(pattern);
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                             PCRE2_UTF | PCRE2_UCP, &err, &err_off, cctx);
  pcre2_compile_context_free(cctx);
  if (!code)
    NF_THROW(kBadFile) << "pre-tokenizer regex does not compile: " << pcre2_message(err)
                       << " at offset " << err_off << " in /" << pattern << "/";
  code_ = code;
  jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::find_all(std::string_view text, std::vector<std::pair<size_t, size_t>>* out) const {
  auto* code = static_cast<pcre2_code*>(code_);
  MatchState& st = match_state();
  auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    // The caller validated the UTF-8 once; skipping PCRE2's check per call keeps this linear.
    int rc = jit_ ? pcre2_jit_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, st.md, st.mctx)
                  : pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, st.md, st.mctx);
    if (rc == PCRE2_ERROR_NOMATCH) return;
    if (rc < 0)
      NF_THROW(kInvalidInput) << "tokenizer regex failed on the input (" << pcre2_message(rc)
                              << "); input too pathological for /" << pattern_ << "/";
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.md);
    size_t b = ov[0], e = ov[1];
    if (e > b) {
      out->emplace_back(b, e);
      pos = e;
    } else {
      // Empty match: step over one whole character.
      pos = b + 1;
      while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
}

}  // namespace nanoflow::tok
