#include "pre_tokenizer.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace nanoflow::tok {
namespace {

// Escapes a literal so that PCRE2 matches it verbatim (HF Split with a String pattern).
std::string quote_literal(const std::string& s) { return "\\Q" + s + "\\E"; }

SplitBehavior parse_behavior(const nlohmann::json& j) {
  NF_CHECK_FILE(j.is_string()) << "Split behavior must be a string";
  const std::string b = j;
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  NF_THROW(kBadFile) << "unknown Split behavior '" << b << "'";
}

void flatten(const nlohmann::json& j, PreTokenizer* out, bool* byte_level) {
  if (j.is_null()) return;
  NF_CHECK_FILE(j.is_object() && j.contains("type") && j["type"].is_string()) << "pre_tokenizer without a type";
  const std::string type = j["type"];
  if (type == "Sequence") {
    NF_CHECK_FILE(j.contains("pretokenizers") && j["pretokenizers"].is_array()) << "Sequence pre_tokenizer without a list";
    for (const auto& p : j["pretokenizers"]) flatten(p, out, byte_level);
  } else if (type == "Split") {
    NF_CHECK_FILE(j.contains("pattern") && j["pattern"].is_object() && j.contains("behavior"))
        << "Split pre_tokenizer needs a pattern and a behavior";
    SplitStep s;
    const auto& p = j["pattern"];
    if (p.contains("Regex") && p["Regex"].is_string()) {
      s.regex = std::make_shared<Regex>(p["Regex"].get<std::string>());
    } else if (p.contains("String") && p["String"].is_string() && !p["String"].get<std::string>().empty()) {
      s.regex = std::make_shared<Regex>(quote_literal(p["String"].get<std::string>()));
    } else {
      NF_THROW(kBadFile) << "Split pattern must be a non-empty {String} or {Regex}";
    }
    s.behavior = parse_behavior(j["behavior"]);
    s.invert = j.value("invert", false);
    out->add_split(std::move(s));
  } else if (type == "ByteLevel") {
    if (j.value("add_prefix_space", false))
      NF_THROW(kUnsupported) << "ByteLevel pre_tokenizer with add_prefix_space=true is not supported";
    *byte_level = true;
    if (j.value("use_regex", true))
      out->add_split(SplitStep{std::make_shared<Regex>(std::string(kGpt2Pattern)), SplitBehavior::kIsolated, false});
  } else if (type == "Digits") {
    // HF splits on char::is_numeric (categories Nd, Nl, No) = \p{N}.
    bool individual = j.value("individual_digits", false);
    out->add_split(SplitStep{std::make_shared<Regex>(individual ? "\\p{N}" : "\\p{N}+"), SplitBehavior::kIsolated, false});
  } else {
    NF_THROW(kUnsupported) << "pre_tokenizer type '" << type << "' is not supported";
  }
}

// Splits [base, base+len) by one step; appends to `out`.
void split_one(const SplitStep& st, std::string_view text, Range r, std::vector<Range>* matches,
               std::vector<Range>* out) {
  matches->clear();
  st.regex->find_all(text.substr(r.first, r.second - r.first), matches);
  // Walk the partition (gap, match, gap, ...) and apply the behavior.
  bool prev_match = false;
  bool have_prev = false;
  size_t pos = 0;
  const size_t len = r.second - r.first;
  auto emit = [&](size_t b, size_t e, bool is_match) {
    if (b == e) return;
    if (st.invert) is_match = !is_match;
    switch (st.behavior) {
      case SplitBehavior::kRemoved:
        if (!is_match) out->emplace_back(r.first + b, r.first + e);
        break;
      case SplitBehavior::kIsolated:
        out->emplace_back(r.first + b, r.first + e);
        break;
      case SplitBehavior::kMergedWithPrevious:
        if (is_match && !prev_match && have_prev) out->back().second = r.first + e;
        else out->emplace_back(r.first + b, r.first + e);
        break;
      case SplitBehavior::kMergedWithNext:
        // A match opens a piece that the following non-match joins.
        if (!is_match && prev_match && have_prev) out->back().second = r.first + e;
        else out->emplace_back(r.first + b, r.first + e);
        break;
      case SplitBehavior::kContiguous:
        if (is_match && prev_match && have_prev) out->back().second = r.first + e;
        else out->emplace_back(r.first + b, r.first + e);
        break;
    }
    prev_match = is_match;
    have_prev = true;
  };
  for (auto [b, e] : *matches) {
    emit(pos, b, false);
    emit(b, e, true);
    pos = e;
  }
  emit(pos, len, false);
}

}  // namespace

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, bool* byte_level) {
  PreTokenizer p;
  flatten(j, &p, byte_level);
  return p;
}

void PreTokenizer::split(std::string_view text, std::vector<Range>* pieces, std::vector<Range>* scratch) const {
  pieces->clear();
  if (text.empty()) return;
  pieces->emplace_back(0, text.size());
  std::vector<Range> matches;
  for (const auto& st : steps_) {
    scratch->clear();
    for (Range r : *pieces) split_one(st, text, r, &matches, scratch);
    pieces->swap(*scratch);
  }
}

}  // namespace nanoflow::tok
