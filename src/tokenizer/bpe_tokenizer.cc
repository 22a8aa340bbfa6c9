#include "bpe_tokenizer.h"

#include "byte_level.h"
#include "core/error.h"
#include "utf8.h"

namespace nanoflow::tok {

BpeTokenizer::BpeTokenizer(BpeTokenizerParts parts) : p_(std::move(parts)) {
  const int32_t n = vocab_size();
  special_.assign(n, 0);
  token_index_.reserve(p_.id_to_token.size());
  for (int32_t id = 0; id < n; ++id) token_index_.emplace(p_.id_to_token[id], id);
  for (const auto& t : p_.added) {
    NF_CHECK_FILE(t.id >= 0 && t.id < n) << "added token id " << t.id << " outside the vocabulary of " << n;
    if (t.special) special_[t.id] = 1;
    token_index_.insert_or_assign(t.content, t.id);
    (t.normalized ? normalized_added_ : raw_added_).add(t);
  }
}

void BpeTokenizer::encode_plain(std::string_view text, std::vector<int32_t>* out) const {
  std::string norm_storage;
  std::string_view norm = text;
  if (!p_.normalizer.empty()) {
    norm_storage.assign(text);
    p_.normalizer.apply(norm_storage);
    norm = norm_storage;
  }
  std::vector<Segment> segs;
  if (normalized_added_.empty()) segs.push_back(Segment{0, norm.size(), -1});
  else normalized_added_.split(norm, &segs);
  thread_local std::vector<Range> pieces, scratch;
  for (const Segment& s : segs) {
    if (s.id >= 0) {
      out->push_back(s.id);
      continue;
    }
    std::string_view sub = norm.substr(s.begin, s.end - s.begin);
    p_.pre_tokenizer.split(sub, &pieces, &scratch);
    for (auto [b, e] : pieces) p_.model->encode_word(sub.substr(b, e - b), out);
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special_tokens) const {
  utf8_require_valid(text, "text to tokenize");
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  if (add_special_tokens) out.insert(out.end(), p_.prefix_ids.begin(), p_.prefix_ids.end());
  if (raw_added_.empty()) {
    encode_plain(text, &out);
  } else {
    std::vector<Segment> segs;
    raw_added_.split(text, &segs);
    for (const Segment& s : segs) {
      if (s.id >= 0) out.push_back(s.id);
      else encode_plain(text.substr(s.begin, s.end - s.begin), &out);
    }
  }
  if (add_special_tokens) out.insert(out.end(), p_.suffix_ids.begin(), p_.suffix_ids.end());
  return out;
}

void BpeTokenizer::check_id(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    NF_THROW(kInvalidInput) << "token id " << id << " is outside the vocabulary [0, " << vocab_size() << ")";
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    check_id(id);
    if (skip_special_tokens && special_[id]) continue;
    tokens.push_back(p_.id_to_token[id]);
  }
  return p_.decoder.decode(std::move(tokens));
}

std::string BpeTokenizer::token_bytes(int32_t id) const {
  check_id(id);
  std::string t = p_.id_to_token[id];
  // The decoder's per-token steps, without the whole-text ones (Strip, UTF-8 repair).
  for (const auto& st : p_.decoder.steps()) {
    switch (st.kind) {
      case DecoderStep::Kind::kByteLevel:
        if (auto b = byte_level_decode(t)) t = std::move(*b);
        break;
      case DecoderStep::Kind::kReplace: {
        std::string out;
        size_t last = 0;
        for (size_t p = t.find(st.pattern); p != std::string::npos; p = t.find(st.pattern, last)) {
          out.append(t, last, p - last).append(st.content);
          last = p + st.pattern.size();
        }
        out.append(t, last, std::string::npos);
        t = std::move(out);
        break;
      }
      case DecoderStep::Kind::kByteFallback:
        if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
          auto hex = [](char c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
          t = std::string(1, static_cast<char>(hex(t[3]) * 16 + hex(t[4])));
        }
        break;
      case DecoderStep::Kind::kFuse:
      case DecoderStep::Kind::kStrip:
        break;
    }
  }
  return t;
}

std::string BpeTokenizer::id_to_token(int32_t id) const {
  check_id(id);
  return p_.id_to_token[id];
}

std::optional<int32_t> BpeTokenizer::token_to_id(std::string_view token) const {
  auto it = token_index_.find(token);
  if (it == token_index_.end()) return std::nullopt;
  return it->second;
}

bool BpeTokenizer::is_special(int32_t id) const {
  check_id(id);
  return special_[id] != 0;
}

}  // namespace nanoflow::tok
