// The one Tokenizer implementation: added-token split -> normalizer -> pre-tokenizer -> BPE ->
// post-processor (BOS/EOS ids), and the decoder for the way back. Both loaders (tokenizer.json and
// GGUF TokenizerSpec) fill a BpeTokenizerParts and construct this class.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "added_vocab.h"
#include "bpe.h"
#include "decoder.h"
#include "normalizer.h"
#include "pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace nanoflow::tok {

struct BpeTokenizerParts {
  std::vector<std::string> id_to_token;  // [vocab_size] vocabulary text (added tokens included)
  std::vector<AddedToken> added;         // ids index id_to_token
  std::unique_ptr<BpeModel> model;
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Decoder decoder;
  std::vector<int32_t> prefix_ids, suffix_ids;  // what add_special_tokens adds around the text
  std::optional<int32_t> bos_id, eos_id;
  std::string bos_token, eos_token;
  std::string chat_template;
};

class BpeTokenizer final : public Tokenizer {
 public:
  explicit BpeTokenizer(BpeTokenizerParts parts);

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override;
  std::string token_bytes(int32_t id) const override;
  std::string id_to_token(int32_t id) const override;
  std::optional<int32_t> token_to_id(std::string_view token) const override;
  int32_t vocab_size() const override { return static_cast<int32_t>(p_.id_to_token.size()); }
  bool is_special(int32_t id) const override;
  std::optional<int32_t> bos_id() const override { return p_.bos_id; }
  std::optional<int32_t> eos_id() const override { return p_.eos_id; }
  const std::string& chat_template() const override { return p_.chat_template; }
  std::string bos_token() const override { return p_.bos_token; }
  std::string eos_token() const override { return p_.eos_token; }

 private:
  void encode_plain(std::string_view text, std::vector<int32_t>* out) const;
  void check_id(int32_t id) const;

  BpeTokenizerParts p_;
  AddedMatcher raw_added_;         // normalized=false tokens, matched on the input text
  AddedMatcher normalized_added_;  // normalized=true tokens, matched after normalization
  std::vector<uint8_t> special_;   // [vocab_size] 1 when the id is a special added token
  VocabMap token_index_;           // vocabulary text -> id (added tokens take precedence)
};

}  // namespace nanoflow::tok
