// Tokenizer interface (byte-level BPE and SentencePiece-style BPE), identical in ids to Hugging
// Face `tokenizers`. Loaded from a HF folder (tokenizer.json + tokenizer_config.json) or from a
// TokenizerSpec built from GGUF metadata (`tokenizer.ggml.*`) by the layer above.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nanoflow {

// GGUF-style description of a vocabulary (plain data; the GGUF reader fills it).
struct TokenizerSpec {
  std::string model;                 // tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SPM)
  std::string pre;                   // tokenizer.ggml.pre: "llama-bpe", "qwen2", "smollm", "default", ...
  std::vector<std::string> tokens;   // id -> token text
  std::vector<float> scores;         // SPM scores (may be empty)
  std::vector<int32_t> token_types;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;   // "a b" (BPE)
  std::optional<int32_t> bos_id, eos_id, unk_id, pad_id;
  std::optional<bool> add_bos, add_eos;
  std::optional<bool> add_space_prefix;  // tokenizer.ggml.add_space_prefix (SPM; default true)
  std::string chat_template;         // tokenizer.chat_template (may be empty)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Throws Error(kBadFile) naming the file and reason for malformed input, in bounded time.
  static std::unique_ptr<Tokenizer> from_hf_folder(const std::string& dir);
  static std::unique_ptr<Tokenizer> from_spec(const TokenizerSpec& spec);

  // Throws Error(kInvalidInput) on invalid UTF-8. add_special_tokens: BOS/EOS as the post-processor
  // (or add_bos/add_eos) says, as HF does.
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const = 0;
  // Throws Error(kInvalidInput) for ids outside the vocabulary. Bytes that do not form valid UTF-8
  // are replaced by U+FFFD exactly as HF's decoder does.
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;
  // Raw bytes a token contributes (after byte-fallback / byte-level mapping; SPM "▁" -> " ").
  virtual std::string token_bytes(int32_t id) const = 0;
  virtual std::string id_to_token(int32_t id) const = 0;  // the vocabulary string
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual int32_t vocab_size() const = 0;
  virtual bool is_special(int32_t id) const = 0;
  virtual std::optional<int32_t> bos_id() const = 0;
  virtual std::optional<int32_t> eos_id() const = 0;
  // Chat template source (Jinja), empty if the model has none; bos/eos token strings for rendering.
  virtual const std::string& chat_template() const = 0;
  virtual std::string bos_token() const = 0;
  virtual std::string eos_token() const = 0;
};

// Streaming decode: feed ids one by one; returns text as soon as it is final (never a split UTF-8
// character, SPM leading space handled). Concatenated output equals decode(all ids).
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer& tok, bool skip_special_tokens,
                         std::span<const int32_t> prompt_ids = {});
  std::string push(int32_t id);
  std::string flush();  // whatever is held back at the end (incomplete UTF-8 becomes U+FFFD)

 private:
  const Tokenizer& tok_;
  bool skip_special_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids_ before this are fully emitted
  size_t read_offset_ = 0;
  std::string emitted_tail_;
};

}  // namespace nanoflow
