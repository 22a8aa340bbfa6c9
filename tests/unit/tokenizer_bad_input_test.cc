// Bad input never crashes and never allocates without bound: invalid UTF-8 and unknown ids are
// kInvalidInput; malformed files are refused at load (kBadFile / kUnsupported) with the reason;
// pathological regexes and 1 MB inputs finish in bounded time.
#include <gtest/gtest.h>

#include <chrono>
#include <random>

#include "core/error.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace nanoflow {
namespace {

using nlohmann::json;

template <class F>
Error expect_error(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "no error";
  return Error(ErrorKind::kInternal, "");
}

std::unique_ptr<Tokenizer> load_json(const std::string& name, const std::string& text) {
  return Tokenizer::from_hf_folder(test::write_tokenizer_dir(name, text));
}

double seconds_of(const std::function<void()>& f) {
  auto t = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

TEST(TokenizerBadInput, InvalidUtf8AndUnknownIds) {
  auto t = load_json("ok", test::byte_level_json().dump());
  for (std::string bad : {"\xFF", "ab\xC3", "\xED\xA0\x80" /* surrogate */, "\xC0\xAF" /* overlong */, "\xF4\x90\x80\x80"}) {
    Error e = expect_error([&] { t->encode(bad, true); });
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << e.what();
  }
  std::vector<int32_t> ids = {1, t->vocab_size()};
  EXPECT_EQ(expect_error([&] { t->decode(ids, false); }).kind(), ErrorKind::kInvalidInput);
  std::vector<int32_t> neg = {-1};
  EXPECT_EQ(expect_error([&] { t->decode(neg, false); }).kind(), ErrorKind::kInvalidInput);
  EXPECT_EQ(expect_error([&] { t->id_to_token(-5); }).kind(), ErrorKind::kInvalidInput);
  EXPECT_EQ(expect_error([&] { t->token_bytes(1 << 30); }).kind(), ErrorKind::kInvalidInput);
}

struct BadFileCase {
  const char* name;
  std::function<void(json&)> edit;
  ErrorKind kind;
  const char* message_part;
};

TEST(TokenizerBadInput, MalformedFilesAreRefusedWithAReason) {
  std::vector<BadFileCase> cases = {
      {"duplicate_id", [](json& j) { j["model"]["vocab"]["dup"] = 5; }, ErrorKind::kBadFile, "duplicate vocabulary id"},
      {"id_beyond", [](json& j) { j["added_tokens"][0]["id"] = 1 << 20; }, ErrorKind::kBadFile, "added token"},
      {"hole", [](json& j) {  // an added token reusing vocabulary id 5 leaves id 265 unassigned
         j["added_tokens"][0]["id"] = 5;
         j["added_tokens"][0]["content"] = tok::byte_to_utf8(5);
         j["added_tokens"][1]["id"] = 266;
       }, ErrorKind::kBadFile, "no token has id 265"},
      {"added_conflict", [](json& j) { j["added_tokens"][0]["id"] = 5; }, ErrorKind::kBadFile, "reuses id 5"},
      {"negative", [](json& j) { j["model"]["vocab"]["x"] = -3; }, ErrorKind::kBadFile, "vocabulary id"},
      {"merge_unknown", [](json& j) { j["model"]["merges"].push_back("zz qq"); }, ErrorKind::kBadFile, "merge"},
      {"merge_shape", [](json& j) { j["model"]["merges"].push_back("a b c"); }, ErrorKind::kBadFile, "merge"},
      {"vocab_type", [](json& j) { j["model"]["vocab"] = json::array(); }, ErrorKind::kBadFile, "vocab"},
      {"wordpiece", [](json& j) { j["model"]["type"] = "WordPiece"; }, ErrorKind::kUnsupported, "WordPiece"},
      {"normalizer", [](json& j) { j["normalizer"] = {{"type", "BertNormalizer"}}; }, ErrorKind::kUnsupported, "BertNormalizer"},
      {"regex", [](json& j) { j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a"}}}, {"behavior", "Isolated"}}; },
       ErrorKind::kBadFile, "regex"},
      {"deep_regex", [](json& j) {
         j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", std::string(200, '(') + "a" + std::string(200, ')')}}}, {"behavior", "Isolated"}};
       }, ErrorKind::kBadFile, "regex"},
      {"post_unknown", [](json& j) { j["post_processor"]["single"][0]["SpecialToken"]["id"] = "<nope>"; j["post_processor"]["special_tokens"] = json::object(); },
       ErrorKind::kBadFile, "<nope>"},
  };
  for (auto& c : cases) {
    json j = test::byte_level_json();
    c.edit(j);
    Error e = expect_error([&] { load_json(c.name, j.dump()); });
    EXPECT_EQ(e.kind(), c.kind) << c.name << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find(c.message_part), std::string::npos) << c.name << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos) << c.name << ": " << e.what();
  }
  Error e = expect_error([&] { load_json("truncated", test::byte_level_json().dump().substr(0, 500)); });
  EXPECT_EQ(e.kind(), ErrorKind::kBadFile) << e.what();
  e = expect_error([&] { Tokenizer::from_hf_folder("/nonexistent/dir"); });
  EXPECT_EQ(e.kind(), ErrorKind::kNotFound) << e.what();
}

TEST(TokenizerBadInput, BadSpecsAreRefused) {
  TokenizerSpec s;
  s.model = "gpt2";
  s.pre = "default";
  for (int b = 0; b < 256; ++b) s.tokens.push_back(tok::byte_to_utf8(static_cast<uint8_t>(b)));
  auto with = [&](auto edit) {
    TokenizerSpec c = s;
    edit(c);
    return expect_error([&] { Tokenizer::from_spec(c); });
  };
  EXPECT_EQ(with([](TokenizerSpec& c) { c.bos_id = 300; }).kind(), ErrorKind::kBadFile);
  EXPECT_EQ(with([](TokenizerSpec& c) { c.token_types = {1, 2}; }).kind(), ErrorKind::kBadFile);
  EXPECT_EQ(with([](TokenizerSpec& c) { c.tokens[3] = "\xFF"; }).kind(), ErrorKind::kBadFile);
  EXPECT_EQ(with([](TokenizerSpec& c) { c.tokens[3] = ""; }).kind(), ErrorKind::kBadFile);
  EXPECT_EQ(with([](TokenizerSpec& c) { c.merges = {"x"}; }).kind(), ErrorKind::kBadFile);
  EXPECT_EQ(with([](TokenizerSpec& c) { c.model = "bert"; }).kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(with([](TokenizerSpec& c) { c.pre = "mystery"; }).kind(), ErrorKind::kUnsupported);
  EXPECT_EQ(with([](TokenizerSpec& c) { c.model = "llama"; }).kind(), ErrorKind::kBadFile);  // no scores
  EXPECT_NO_THROW(Tokenizer::from_spec(s));
}

TEST(TokenizerBadInput, CatastrophicRegexIsCutOffInBoundedTime) {
  json j = test::byte_level_json();
  // Exponential backtracking on "aaaa...c" (no required literal for PCRE2 to check first): the
  // match limit stops it with kInvalidInput.
  j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(a|aa)+$"}}}, {"behavior", "Isolated"}};
  auto t = load_json("catastrophic", j.dump());
  std::string input(4000, 'a');
  input += 'c';
  double s = seconds_of([&] {
    Error e = expect_error([&] { t->encode(input, false); });
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput) << e.what();
  });
  EXPECT_LT(s, 30.0);
}

TEST(TokenizerBadInput, OneMegabyteEncodesInBoundedTime) {
  auto bl = load_json("big_bl", test::byte_level_json().dump());
  auto sp = load_json("big_spm", test::spm_json().dump());
  std::mt19937 rng(1);
  std::string words, one_word(1 << 20, 'h');
  const char* pieces[] = {"hello", " world", " ", "\xE4\xBD\xA0", "\n", "12345", "\xF0\x9F\xA4\x96", "hi"};
  while (words.size() < (1u << 20)) words += pieces[rng() % 8];
  for (auto* t : {bl.get(), sp.get()}) {
    for (const std::string* in : {&words, &one_word}) {
      size_t n = 0;
      double s = seconds_of([&] { n = t->encode(*in, false).size(); });
      EXPECT_GT(n, 1000u);
      EXPECT_LT(s, 20.0) << "1 MB input took " << s << " s";
      auto ids = t->encode(*in, false);
      EXPECT_EQ(t->decode(ids, false).size(), in->size() + (t == sp.get() ? 0 : 0));
    }
  }
}

}  // namespace
}  // namespace nanoflow
