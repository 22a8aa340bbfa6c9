// Tokenizer::from_spec: a GGUF vocabulary (tokenizer.ggml.*) turned into the same pipeline that
// Hugging Face builds for the model:
//  - model "gpt2": byte-level BPE; the pre-tokenizer comes from tokenizer.ggml.pre (the regexes of
//    the original tokenizer.json files: llama-bpe = Llama 3, qwen2, smollm/starcoder = digits split
//    + GPT-2 pattern, gpt-2/default = GPT-2 pattern).
//  - model "llama": SentencePiece BPE with byte fallback; merges are generated from the vocabulary
//    and scores as transformers' converter does (every split of a token into two vocabulary tokens,
//    ordered by the merged token's score, high first; ties in (left id, right id) order), which
//    reproduces Llama 2's tokenizer.json merges exactly.
// Token types: 2 unknown / 3 control -> special added tokens, 4 user-defined -> added tokens.
#include <algorithm>
#include <numeric>

#include "bpe_tokenizer.h"
#include "core/error.h"
#include "tokenizer_build.h"
#include "utf8.h"

namespace nanoflow {
namespace tok {
namespace {

constexpr int32_t kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4;

// Llama 3's and Qwen2's Split patterns (tokenizer.json); GPT-2's is kGpt2Pattern.
constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::vector<std::pair<std::string, std::string>> spm_merges(const TokenizerSpec& spec) {
  VocabMap ids;
  ids.reserve(spec.tokens.size());
  for (size_t i = 0; i < spec.tokens.size(); ++i) ids.emplace(spec.tokens[i], static_cast<int32_t>(i));
  struct M {
    int32_t l, r;
    float score;
  };
  std::vector<M> all;
  std::vector<M> local;
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    const std::string& t = spec.tokens[i];
    local.clear();
    for (size_t k = utf8_seq_len(static_cast<uint8_t>(t[0])); k < t.size(); k += utf8_seq_len(static_cast<uint8_t>(t[k]))) {
      auto a = ids.find(std::string_view(t).substr(0, k)), b = ids.find(std::string_view(t).substr(k));
      if (a != ids.end() && b != ids.end()) local.push_back(M{a->second, b->second, spec.scores[i]});
    }
    std::sort(local.begin(), local.end(), [](const M& x, const M& y) { return x.l != y.l ? x.l < y.l : x.r < y.r; });
    all.insert(all.end(), local.begin(), local.end());
  }
  std::stable_sort(all.begin(), all.end(), [](const M& x, const M& y) { return x.score > y.score; });
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(all.size());
  for (const M& m : all) out.emplace_back(spec.tokens[m.l], spec.tokens[m.r]);
  return out;
}

std::unique_ptr<Tokenizer> build(const TokenizerSpec& spec) {
  const std::string f = "GGUF tokenizer";
  const size_t n = spec.tokens.size();
  NF_CHECK_FILE(n > 0 && n < (size_t{1} << 24)) << f << ": vocabulary size " << n << " out of range";
  NF_CHECK_FILE(spec.token_types.empty() || spec.token_types.size() == n)
      << f << ": " << spec.token_types.size() << " token types for " << n << " tokens";
  NF_CHECK_FILE(spec.scores.empty() || spec.scores.size() == n) << f << ": " << spec.scores.size() << " scores for " << n << " tokens";
  for (size_t i = 0; i < n; ++i) {
    NF_CHECK_FILE(utf8_is_valid(spec.tokens[i])) << f << ": token " << i << " is not valid UTF-8";
    NF_CHECK_FILE(!spec.tokens[i].empty()) << f << ": token " << i << " is empty";
  }
  auto check_opt = [&](const std::optional<int32_t>& id, const char* what) {
    if (id) {
      NF_CHECK_FILE(*id >= 0 && static_cast<size_t>(*id) < n) << f << ": " << what << " id " << *id << " outside the vocabulary of " << n;
    }
  };
  check_opt(spec.bos_id, "bos");
  check_opt(spec.eos_id, "eos");
  check_opt(spec.unk_id, "unk");
  check_opt(spec.pad_id, "pad");

  VocabSource src;
  src.source = f;
  BpeConfig cfg;
  BpeTokenizerParts parts;
  // Added tokens: control/unknown (special) and user-defined; they stay in the model vocabulary
  // too, as in HF files converted from SentencePiece.
  for (size_t i = 0; i < n; ++i) {
    src.vocab.emplace_back(spec.tokens[i], static_cast<int64_t>(i));
    int32_t type = spec.token_types.empty() ? 1 : spec.token_types[i];
    if (type == kTypeUnknown || type == kTypeControl || type == kTypeUserDefined) {
      AddedToken t;
      t.content = spec.tokens[i];
      t.id = static_cast<int32_t>(i);
      t.special = type != kTypeUserDefined;
      t.normalized = false;
      src.added.push_back(std::move(t));
    }
  }
  if (spec.model == "gpt2") {
    cfg.byte_level = true;
    for (size_t r = 0; r < spec.merges.size(); ++r) {
      const std::string& m = spec.merges[r];
      size_t sp = m.find(' ');
      NF_CHECK_FILE(sp != std::string::npos && m.find(' ', sp + 1) == std::string::npos)
          << f << ": merge #" << r << " '" << m << "' is not two tokens separated by one space";
      src.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
    }
    const std::string& pre = spec.pre;
    std::vector<std::string> patterns;
    if (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") {
      patterns = {kLlama3Pattern};
      cfg.ignore_merges = true;
    } else if (pre == "qwen2") {
      patterns = {kQwen2Pattern};
      parts.normalizer.add({NormalizerStep::Kind::kNfc, {}, {}, nullptr});
    } else if (pre == "smollm" || pre == "starcoder" || pre == "refact" || pre == "codeshell") {
      patterns = {"\\p{N}", std::string(kGpt2Pattern)};
    } else if (pre == "gpt-2" || pre == "gpt2" || pre == "default" || pre.empty()) {
      patterns = {std::string(kGpt2Pattern)};
    } else {
      NF_THROW(kUnsupported) << f << ": pre-tokenizer '" << pre << "' is not supported";
    }
    for (auto& p : patterns) parts.pre_tokenizer.add_split(SplitStep{std::make_shared<Regex>(p), SplitBehavior::kIsolated, false});
    parts.decoder.add({DecoderStep::Kind::kByteLevel, {}, {}, 0, 0});
  } else if (spec.model == "llama") {
    NF_CHECK_FILE(spec.scores.size() == n) << f << ": a SentencePiece vocabulary needs scores";
    cfg.byte_fallback = true;
    cfg.fuse_unk = true;
    if (spec.unk_id) src.unk_token = spec.tokens[*spec.unk_id];
    src.merges = spm_merges(spec);
    if (spec.add_space_prefix.value_or(true))
      parts.normalizer.add({NormalizerStep::Kind::kPrepend, "\xE2\x96\x81", {}, nullptr});
    parts.normalizer.add({NormalizerStep::Kind::kReplace, "\xE2\x96\x81", " ", nullptr});
    parts.decoder.add({DecoderStep::Kind::kReplace, "\xE2\x96\x81", " ", 0, 0});
    parts.decoder.add({DecoderStep::Kind::kByteFallback, {}, {}, 0, 0});
    parts.decoder.add({DecoderStep::Kind::kFuse, {}, {}, 0, 0});
    parts.decoder.add({DecoderStep::Kind::kStrip, {}, " ", 1, 0});
  } else {
    NF_THROW(kUnsupported) << f << ": tokenizer model '" << spec.model << "' is not supported (gpt2, llama)";
  }
  build_vocab(std::move(src), cfg, &parts);
  if (spec.add_bos.value_or(spec.model == "llama") && spec.bos_id) parts.prefix_ids.push_back(*spec.bos_id);
  if (spec.add_eos.value_or(false) && spec.eos_id) parts.suffix_ids.push_back(*spec.eos_id);
  parts.bos_id = spec.bos_id;
  parts.eos_id = spec.eos_id;
  if (spec.bos_id) parts.bos_token = spec.tokens[*spec.bos_id];
  if (spec.eos_id) parts.eos_token = spec.tokens[*spec.eos_id];
  parts.chat_template = spec.chat_template;
  return std::make_unique<BpeTokenizer>(std::move(parts));
}

}  // namespace
}  // namespace tok

std::unique_ptr<Tokenizer> Tokenizer::from_spec(const TokenizerSpec& spec) { return tok::build(spec); }

}  // namespace nanoflow
