// Shared by both loaders: validates a vocabulary + merges + added tokens and builds the BPE model.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bpe_tokenizer.h"

namespace nanoflow::tok {

struct VocabSource {
  std::string source;                                  // file name for messages
  std::vector<std::pair<std::string, int64_t>> vocab;  // model vocabulary: text -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order, vocabulary text
  std::vector<AddedToken> added;
  std::string unk_token;  // empty: none
};

// Checks (each failure is Error(kBadFile)): ids in range and unique, text valid UTF-8, merges name
// vocabulary tokens, the id space [0, n) of vocabulary + added tokens has no holes (so a lying id
// cannot make us allocate), an added token that reuses a vocabulary id has the same text.
// Fills parts->id_to_token, parts->added and parts->model.
void build_vocab(VocabSource src, BpeConfig cfg, BpeTokenizerParts* parts);

}  // namespace nanoflow::tok
