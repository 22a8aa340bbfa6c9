#include "engine/tokenizer_loading.h"

#include <filesystem>

#include "core/error.h"
#include "loader/gguf.h"

namespace nanoflow {
namespace {

std::optional<int32_t> opt_id(const GgufFile& g, const char* key) {
  if (!g.has(key)) return std::nullopt;
  int64_t v = g.get_int(key);
  // -1 is how some converters write "none".
  if (v < 0) return std::nullopt;
  NF_CHECK_FILE(v < (int64_t{1} << 31)) << g.source() << ": " << key << " = " << v << " is out of range";
  return static_cast<int32_t>(v);
}

std::optional<bool> opt_bool(const GgufFile& g, const char* key) {
  if (!g.has(key)) return std::nullopt;
  return g.get_bool(key);
}

}  // namespace

TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& g) {
  TokenizerSpec s;
  s.model = g.get_string("tokenizer.ggml.model");
  s.pre = g.get_string("tokenizer.ggml.pre", "default");
  s.tokens = g.get_string_array("tokenizer.ggml.tokens");
  if (g.has("tokenizer.ggml.scores")) s.scores = g.get_float_array("tokenizer.ggml.scores");
  if (g.has("tokenizer.ggml.token_type")) {
    for (int64_t t : g.get_int_array("tokenizer.ggml.token_type")) s.token_types.push_back(static_cast<int32_t>(t));
  }
  if (g.has("tokenizer.ggml.merges")) s.merges = g.get_string_array("tokenizer.ggml.merges");
  s.bos_id = opt_id(g, "tokenizer.ggml.bos_token_id");
  s.eos_id = opt_id(g, "tokenizer.ggml.eos_token_id");
  s.unk_id = opt_id(g, "tokenizer.ggml.unknown_token_id");
  s.pad_id = opt_id(g, "tokenizer.ggml.padding_token_id");
  s.add_bos = opt_bool(g, "tokenizer.ggml.add_bos_token");
  s.add_eos = opt_bool(g, "tokenizer.ggml.add_eos_token");
  s.add_space_prefix = opt_bool(g, "tokenizer.ggml.add_space_prefix");
  s.chat_template = g.get_string("tokenizer.chat_template", "");
  return s;
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(model_path, ec)) return Tokenizer::from_hf_folder(model_path);
  if (fs::is_regular_file(model_path, ec) && fs::path(model_path).extension() == ".gguf") {
    GgufFile g = GgufFile::open(model_path);
    try {
      return Tokenizer::from_spec(tokenizer_spec_from_gguf(g));
    } catch (const Error& e) {
      throw Error(e.kind(), model_path + ": " + e.what());
    }
  }
  NF_THROW(kNotFound) << "'" << model_path << "' is neither a model folder with tokenizer.json nor a .gguf file";
}

}  // namespace nanoflow
