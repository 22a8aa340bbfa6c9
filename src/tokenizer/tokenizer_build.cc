#include "tokenizer_build.h"

#include "byte_level.h"
#include "core/error.h"
#include "utf8.h"

namespace nanoflow::tok {

void build_vocab(VocabSource src, BpeConfig cfg, BpeTokenizerParts* parts) {
  const std::string& f = src.source;
  // Ids are dense, so the largest legal id is bounded by the number of entries we were given.
  const size_t n_entries = src.vocab.size() + src.added.size();
  std::vector<std::string> id_to_token(n_entries);
  std::vector<uint8_t> assigned(n_entries, 0);   // 1 = model vocabulary, 2 = added only
  int64_t max_id = -1;
  for (auto& [text, id] : src.vocab) {
    NF_CHECK_FILE(id >= 0 && static_cast<size_t>(id) < n_entries)
        << f << ": vocabulary id " << id << " of '" << text << "' is outside [0, " << n_entries << ")";
    NF_CHECK_FILE(!assigned[id]) << f << ": duplicate vocabulary id " << id << " ('" << id_to_token[id] << "' and '" << text << "')";
    NF_CHECK_FILE(utf8_is_valid(text)) << f << ": vocabulary entry " << id << " is not valid UTF-8";
    assigned[id] = 1;
    id_to_token[id] = text;
    max_id = std::max(max_id, id);
  }
  std::vector<AddedToken> added;
  for (auto& t : src.added) {
    NF_CHECK_FILE(t.id >= 0 && static_cast<size_t>(t.id) < n_entries)
        << f << ": added token '" << t.content << "' has id " << t.id << " beyond the vocabulary (" << n_entries << " entries)";
    NF_CHECK_FILE(utf8_is_valid(t.content)) << f << ": added token " << t.id << " is not valid UTF-8";
    NF_CHECK_FILE(!t.content.empty()) << f << ": added token " << t.id << " is empty";
    if (assigned[t.id] == 1) {
      NF_CHECK_FILE(id_to_token[t.id] == t.content)
          << f << ": added token '" << t.content << "' reuses id " << t.id << " of vocabulary entry '" << id_to_token[t.id] << "'";
    } else if (assigned[t.id] == 2) {
      NF_CHECK_FILE(id_to_token[t.id] == t.content) << f << ": two added tokens with id " << t.id;
      continue;
    } else {
      assigned[t.id] = 2;
      id_to_token[t.id] = t.content;
    }
    max_id = std::max<int64_t>(max_id, t.id);
    added.push_back(std::move(t));
  }
  NF_CHECK_FILE(max_id >= 0) << f << ": empty vocabulary";
  const size_t n = static_cast<size_t>(max_id) + 1;
  for (size_t id = 0; id < n; ++id)
    NF_CHECK_FILE(assigned[id]) << f << ": no token has id " << id << " (ids must be dense up to " << max_id << ")";
  id_to_token.resize(n);

  // Model vocabulary keyed in the model alphabet (raw bytes for byte-level).
  VocabMap vocab;
  vocab.reserve(src.vocab.size());
  std::vector<std::string> id_to_key(n);
  VocabMap by_text;  // vocabulary text -> id, for merges and unk
  by_text.reserve(src.vocab.size());
  for (auto& [text, id] : src.vocab) {
    by_text.emplace(text, static_cast<int32_t>(id));
    std::string key = text;
    if (cfg.byte_level) {
      auto raw = byte_level_decode(text);
      if (!raw) continue;  // text outside the byte alphabet: BPE can never produce it
      key = std::move(*raw);
    }
    id_to_key[id] = key;
    vocab.emplace(std::move(key), static_cast<int32_t>(id));
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  merges.reserve(src.merges.size());
  for (size_t r = 0; r < src.merges.size(); ++r) {
    auto& [a, b] = src.merges[r];
    auto ia = by_text.find(a), ib = by_text.find(b);
    NF_CHECK_FILE(ia != by_text.end() && ib != by_text.end())
        << f << ": merge #" << r << " '" << a << " " << b << "' names a token that is not in the vocabulary";
    merges.emplace_back(ia->second, ib->second);
  }
  if (!src.unk_token.empty()) {
    auto it = by_text.find(src.unk_token);
    NF_CHECK_FILE(it != by_text.end()) << f << ": unk_token '" << src.unk_token << "' is not in the vocabulary";
    cfg.unk_id = it->second;
  }
  try {
    parts->model = std::make_unique<BpeModel>(cfg, std::move(vocab), merges, id_to_key);
  } catch (const Error& e) {
    throw Error(e.kind(), f + ": " + e.what());
  }
  parts->id_to_token = std::move(id_to_token);
  parts->added = std::move(added);
}

}  // namespace nanoflow::tok
