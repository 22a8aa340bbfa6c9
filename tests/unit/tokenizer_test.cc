// Tokenizer behaviour on small synthetic tokenizer.json files: BPE merge order, added tokens,
// BOS, decoding rules (byte-level, byte fallback, SentencePiece space), streaming detokenization.
// Identity with HF on the real files is tests/model/test_tokenizer_hf.py.
#include <gtest/gtest.h>

#include <random>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace nanoflow {
namespace {

std::unique_ptr<Tokenizer> byte_level() {
  static std::string dir = test::write_tokenizer_dir("bl", test::byte_level_json().dump(),
                                                     {{"bos_token", "<|begin|>"}, {"eos_token", {{"content", "<|end|>"}}},
                                                      {"chat_template", "{{ messages }}"}});
  return Tokenizer::from_hf_folder(dir);
}

std::unique_ptr<Tokenizer> spm() {
  static std::string dir = test::write_tokenizer_dir("spm", test::spm_json().dump());
  return Tokenizer::from_hf_folder(dir);
}

TEST(Tokenizer, ByteLevelMergesAndAddedTokens) {
  auto t = byte_level();
  const int32_t hello = *t->token_to_id("hello"), world = *t->token_to_id("Ġworld");
  const int32_t begin = *t->token_to_id("<|begin|>"), end = *t->token_to_id("<|end|>");
  EXPECT_EQ(t->encode("hello world", false), (std::vector<int32_t>{hello, world}));
  EXPECT_EQ(t->encode("hello world", true), (std::vector<int32_t>{begin, hello, world}));
  // Added tokens are matched first and never split; the text around them is encoded separately.
  EXPECT_EQ(t->encode("hello<|end|> world", false), (std::vector<int32_t>{hello, end, world}));
  // Bytes without merges stay single byte tokens (byte b is id b in this vocabulary).
  EXPECT_EQ(t->encode("\xC3\xA9!", false), (std::vector<int32_t>{0xC3, 0xA9, '!'}));
  EXPECT_EQ(t->bos_id(), begin);
  EXPECT_EQ(t->eos_id(), end);
  EXPECT_EQ(t->bos_token(), "<|begin|>");
  EXPECT_EQ(t->chat_template(), "{{ messages }}");
  EXPECT_TRUE(t->is_special(end));
  EXPECT_FALSE(t->is_special(hello));
  EXPECT_EQ(t->token_bytes(world), " world");
}

TEST(Tokenizer, ByteLevelDecode) {
  auto t = byte_level();
  auto ids = t->encode("hello<|end|> world", true);
  EXPECT_EQ(t->decode(ids, false), "<|begin|>hello<|end|> world");
  EXPECT_EQ(t->decode(ids, true), "hello world");
  // Bytes that are not valid UTF-8 become U+FFFD (one per maximal invalid sequence, as HF).
  std::vector<int32_t> broken = {0xE4, 0xBD, 'a', 0xFF};
  EXPECT_EQ(t->decode(broken, false), "\xEF\xBF\xBD" "a" "\xEF\xBF\xBD");
}

TEST(Tokenizer, SentencePieceByteFallbackAndSpaces) {
  auto t = spm();
  const int32_t sp_hi = *t->token_to_id("\xE2\x96\x81hi"), sp = *t->token_to_id("\xE2\x96\x81");
  EXPECT_EQ(t->encode("hi", false), (std::vector<int32_t>{sp_hi}));
  EXPECT_EQ(t->encode("hi", true), (std::vector<int32_t>{1, sp_hi}));
  // 'z' is not in the vocabulary: byte fallback <0x7A> (id 3 + 0x7A).
  EXPECT_EQ(t->encode("hi z", false), (std::vector<int32_t>{sp_hi, sp, 3 + 0x7A}));
  EXPECT_EQ(t->decode(t->encode("hi z", true), true), "hi z");
  // The decoder strips the one space the normalizer prepended.
  EXPECT_EQ(t->decode(t->encode("  hi", false), false), "  hi");
  EXPECT_EQ(t->token_bytes(3 + 0x7A), "z");
  EXPECT_EQ(t->token_bytes(sp_hi), " hi");
  // A byte-fallback run that is not valid UTF-8 gives one U+FFFD per byte (HF's ByteFallback).
  std::vector<int32_t> bad = {3 + 0xE4, 3 + 0xBD};
  EXPECT_EQ(t->decode(bad, false), "\xEF\xBF\xBD\xEF\xBF\xBD");
  std::vector<int32_t> good = {3 + 0xE4, 3 + 0xBD, 3 + 0xA0};
  EXPECT_EQ(t->decode(good, false), "\xE4\xBD\xA0");
}

std::string stream_all(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip,
                       std::vector<std::string>* chunks) {
  IncrementalDetokenizer d(t, skip);
  std::string all;
  for (int32_t id : ids) chunks->push_back(d.push(id));
  chunks->push_back(d.flush());
  for (auto& c : *chunks) all += c;
  return all;
}

bool valid_utf8(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

TEST(IncrementalDetokenizer, NeverSplitsACharacterAndMatchesDecode) {
  auto t = byte_level();
  std::mt19937 rng(7);
  const char* pieces[] = {"hello", " world", "\xE4\xBD\xA0\xE5\xA5\xBD", "\xF0\x9F\xA4\x96", "<|end|>", "\xC3\xA9", " "};
  int multi_byte_lines = 0;
  for (int line = 0; line < 200; ++line) {
    std::string text;
    for (int k = 0; k < 12; ++k) text += pieces[rng() % 7];
    auto ids = t->encode(text, true);
    for (bool skip : {false, true}) {
      std::vector<std::string> chunks;
      EXPECT_EQ(stream_all(*t, ids, skip, &chunks), t->decode(ids, skip)) << text;
      for (auto& c : chunks) EXPECT_TRUE(valid_utf8(c));
      // A 4-byte character arrives as 4 byte tokens: the first three pushes emit nothing for it.
    }
    multi_byte_lines += text.find('\xF0') != std::string::npos;
  }
  EXPECT_GT(multi_byte_lines, 50);  // the random lines really exercise split characters
}

TEST(IncrementalDetokenizer, SentencePieceSpacesAndPromptContext) {
  auto t = spm();
  auto ids = t->encode("hi hi z hi", false);
  std::vector<std::string> chunks;
  EXPECT_EQ(stream_all(*t, ids, false, &chunks), "hi hi z hi");
  // After a prompt the first token keeps its leading space (it continues the prompt's text).
  auto prompt = t->encode("hi", true);
  IncrementalDetokenizer d(*t, true, prompt);
  std::string out = d.push(*t->token_to_id("\xE2\x96\x81hi"));
  out += d.flush();
  EXPECT_EQ(out, " hi");
  // Byte-fallback pieces of one character are held until it is complete.
  IncrementalDetokenizer d2(*t, false);
  EXPECT_EQ(d2.push(3 + 0xE4), "");
  EXPECT_EQ(d2.push(3 + 0xBD), "");
  EXPECT_EQ(d2.push(3 + 0xA0), "\xE4\xBD\xA0");
}

TEST(IncrementalDetokenizer, RejectsIdsOutsideTheVocabulary) {
  auto t = byte_level();
  IncrementalDetokenizer d(*t, false);
  try {
    d.push(t->vocab_size());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
  }
}

TEST(Tokenizer, FromSpecSentencePiece) {
  // A SentencePiece vocabulary without merges: they are generated from the scores.
  TokenizerSpec s;
  s.model = "llama";
  s.tokens = {"<unk>", "<s>", "</s>"};
  s.token_types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    s.tokens.push_back(name);
    s.token_types.push_back(6);
  }
  for (const char* t : {"\xE2\x96\x81", "a", "b", "ab", "\xE2\x96\x81" "ab"}) {
    s.tokens.push_back(t);
    s.token_types.push_back(1);
  }
  s.scores.assign(s.tokens.size(), 0.0f);
  s.scores[s.tokens.size() - 2] = -1.0f;  // "ab"
  s.scores[s.tokens.size() - 1] = -2.0f;  // "▁ab"
  s.bos_id = 1;
  s.eos_id = 2;
  s.unk_id = 0;
  auto t = Tokenizer::from_spec(s);
  const int32_t sp_ab = static_cast<int32_t>(s.tokens.size() - 1);
  EXPECT_EQ(t->encode("ab", true), (std::vector<int32_t>{1, sp_ab}));  // add_bos defaults on for llama
  EXPECT_EQ(t->decode(t->encode("ab ab", true), true), "ab ab");
  EXPECT_EQ(t->eos_token(), "</s>");
}

}  // namespace
}  // namespace nanoflow
