// Makes a tokenizer.json regex (written for HF's Oniguruma engine) mean the same under PCRE2:
// \s, \S, \p{L}, \P{L}, \p{N}, \P{N} are rewritten to classes built from HF's Unicode tables
// (unicode_classes.inc). \s becomes HF's exact 25 code points (PCRE2 adds U+180E); \p{L} / \p{N}
// keep PCRE2's property and add the code points that HF's newer Unicode has and PCRE2's lacks
// (computed once per process against the linked PCRE2, so any PCRE2 version works).
#pragma once
#include <string>
#include <string_view>

namespace nanoflow::tok {

std::string translate_hf_regex(std::string_view pattern);

}  // namespace nanoflow::tok
