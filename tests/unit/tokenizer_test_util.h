// Synthetic tokenizer.json files for tokenizer unit tests (no model files needed).
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "../../src/tokenizer/byte_level.h"

namespace nanoflow::test {

// A fresh folder under the temp dir holding `tokenizer.json` = j (and tokenizer_config.json = cfg).
// Removes the folders at exit so test runs leave nothing behind in the temp dir.
struct TempDirs {
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};

inline std::string write_tokenizer_dir(const std::string& name, const std::string& tokenizer_json,
                                       const nlohmann::json& cfg = nullptr) {
  namespace fs = std::filesystem;
  static TempDirs temp_dirs;
  fs::path dir = fs::temp_directory_path() / ("nf_tok_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  temp_dirs.dirs.push_back(dir);
  std::ofstream(dir / "tokenizer.json") << tokenizer_json;
  if (!cfg.is_null()) std::ofstream(dir / "tokenizer_config.json") << cfg.dump();
  return dir.string();
}

// Byte-level BPE: ids 0..255 are the byte characters (in byte order), then merges' results, then
// added tokens <|begin|> (BOS via TemplateProcessing) and <|end|>.
inline nlohmann::json byte_level_json() {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[tok::byte_to_utf8(static_cast<uint8_t>(b))] = b;
  json merges = json::array();
  int next = 256;
  for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"o", "r"}, {"Ġw", "or"}, {"l", "d"},
           {"Ġwor", "ld"}}) {
    merges.push_back(a + " " + b);
    vocab[a + b] = next++;
  }
  json j = {{"version", "1.0"},
            {"added_tokens",
             {{{"id", next}, {"content", "<|begin|>"}, {"special", true}, {"normalized", false}},
              {{"id", next + 1}, {"content", "<|end|>"}, {"special", true}, {"normalized", false}}}},
            {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"post_processor",
             {{"type", "TemplateProcessing"},
              {"single", {{{"SpecialToken", {{"id", "<|begin|>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
              {"special_tokens", {{"<|begin|>", {{"id", "<|begin|>"}, {"ids", {next}}, {"tokens", {"<|begin|>"}}}}}}}},
            {"decoder", {{"type", "ByteLevel"}}},
            {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  return j;
}

// SentencePiece-style BPE with byte fallback (the Llama 2 pipeline): <unk> <s> </s>, <0x00>..<0xFF>,
// then ▁ and a few letters and merges.
inline nlohmann::json spm_json() {
  using nlohmann::json;
  json vocab = json::object();
  vocab["<unk>"] = 0;
  vocab["<s>"] = 1;
  vocab["</s>"] = 2;
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    vocab[name] = 3 + b;
  }
  int next = 259;
  for (const char* t : {"\xE2\x96\x81", "h", "i", "a", "b"}) vocab[t] = next++;
  json merges = json::array();
  for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{{"h", "i"}, {"\xE2\x96\x81", "hi"}}) {
    merges.push_back(a + " " + b);
    vocab[a + b] = next++;
  }
  const std::string sp = "\xE2\x96\x81";
  json j = {{"added_tokens",
             {{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
              {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
              {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}}},
            {"normalizer",
             {{"type", "Sequence"},
              {"normalizers",
               {{{"type", "Prepend"}, {"prepend", sp}},
                {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", sp}}}}}},
            {"pre_tokenizer", nullptr},
            {"post_processor",
             {{"type", "TemplateProcessing"},
              {"single", {{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
              {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
            {"decoder",
             {{"type", "Sequence"},
              {"decoders",
               {{{"type", "Replace"}, {"pattern", {{"String", sp}}}, {"content", " "}},
                {{"type", "ByteFallback"}},
                {{"type", "Fuse"}},
                {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
            {"model",
             {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", true}, {"byte_fallback", true}, {"vocab", vocab}, {"merges", merges}}}};
  return j;
}

}  // namespace nanoflow::test
