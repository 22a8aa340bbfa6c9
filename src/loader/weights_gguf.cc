// GGUF model files: ModelConfig from metadata, weights mapped onto canonical names.
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "loader/model_files.h"
#include "weight_store_impl.h"

namespace nanoflow {
namespace fs = std::filesystem;

bool is_gguf_path(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ext == ".gguf";
}

ModelConfig gguf_model_config(const GgufFile& f) {
  const std::string& src = f.source();
  ModelConfig c;
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2")
    NF_THROW(kUnsupported) << src << ": GGUF architecture \"" << arch << "\" is not supported (llama, qwen2)";
  c.architecture = arch;
  const std::string a = arch + ".";
  c.name = f.get_string("general.name", fs::path(src).stem().string());
  c.num_layers = f.get_int(a + "block_count");
  c.hidden_size = f.get_int(a + "embedding_length");
  c.intermediate_size = f.get_int(a + "feed_forward_length");
  c.num_heads = f.get_int(a + "attention.head_count");
  c.num_kv_heads = f.get_int(a + "attention.head_count_kv", c.num_heads);
  c.max_position_embeddings = f.get_int(a + "context_length", 4096);
  if (c.num_heads <= 0) NF_THROW(kBadFile) << src << ": " << a << "attention.head_count is " << c.num_heads;
  c.head_dim = f.get_int(a + "attention.key_length", c.hidden_size / c.num_heads);
  c.rms_norm_eps = static_cast<float>(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
  c.rope_theta = static_cast<float>(f.get_float(a + "rope.freq_base", 10000.0));
  const std::string scaling = f.get_string(a + "rope.scaling.type", "none");
  if (scaling != "none")
    NF_THROW(kUnsupported) << src << ": rope scaling \"" << scaling << "\" in GGUF metadata is not supported";
  if (f.find_tensor("rope_freqs.weight")) {
    NF_LOG(kWarn) << src << ": has rope_freqs.weight (llama3 rope scaling); its factors are not used";
  }
  c.num_experts = f.get_int(a + "expert_count", 0);
  c.num_experts_per_tok = f.get_int(a + "expert_used_count", 0);
  const GgufTensorInfo* embd = f.find_tensor("token_embd.weight");
  if (f.has(a + "vocab_size"))
    c.vocab_size = f.get_int(a + "vocab_size");
  else if (const GgufValue* toks = f.find("tokenizer.ggml.tokens"); toks && toks->type == GgufType::kArray)
    c.vocab_size = static_cast<int64_t>(toks->count);
  else if (embd && embd->shape.ndim() == 2)
    c.vocab_size = embd->shape[0];
  else
    NF_THROW(kBadFile) << src << ": cannot tell the vocabulary size (no " << a << "vocab_size, tokens or token_embd.weight)";
  c.tie_word_embeddings = f.find_tensor("output.weight") == nullptr;
  c.attention_bias = arch == "qwen2" || f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.bos_token_id = f.get_int("tokenizer.ggml.bos_token_id", -1);
  c.eos_token_id = f.get_int("tokenizer.ggml.eos_token_id", -1);
  c.validate(src);
  return c;
}

ModelConfig read_model_config(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const std::string cfg = (fs::path(path) / "config.json").string();
    if (!fs::exists(cfg)) NF_THROW(kBadFile) << path << ": no config.json";
    ModelConfig c = parse_hf_config(read_text_file(cfg, size_t{64} << 20), cfg);
    c.name = fs::path(path).lexically_normal().filename().string();
    if (c.name.empty()) c.name = fs::path(path).lexically_normal().parent_path().filename().string();
    return c;
  }
  if (!fs::exists(path, ec)) NF_THROW(kIo) << path << ": no such file or folder";
  if (!is_gguf_path(path)) NF_THROW(kBadFile) << path << ": not a model folder or a .gguf file";
  return gguf_model_config(GgufFile::open(path));
}

namespace detail {

std::unique_ptr<MappedWeightStore> open_gguf(const std::string& path) {
  auto ws = std::make_unique<MappedWeightStore>();
  ws->source = path;
  ws->gguf_.emplace(GgufFile::open(path));
  const GgufFile& f = *ws->gguf_;
  ws->config_ = gguf_model_config(f);
  // llama.cpp's converter interleaves the two rotary halves of each Q/K head for "llama" models.
  const bool permuted = ws->config_.architecture == "llama";
  for (const GgufTensorInfo& t : f.tensors()) {
    const std::string canon = canonical_from_gguf(t.name, path);
    if (canon.empty()) continue;
    if (const size_t star = canon.find(".*."); star != std::string::npos) {
      // Merged experts [E, rows, cols]: one view per expert, each a contiguous slice.
      if (t.shape.ndim() != 3 || t.shape[0] != ws->config_.num_experts)
        NF_THROW(kBadFile) << path << ": tensor '" << t.name << "' has shape " << t.shape.str() << ", expected ["
                           << ws->config_.num_experts << ", rows, cols]";
      const uint64_t per_expert = t.nbytes / static_cast<uint64_t>(t.shape[0]);
      for (int64_t e = 0; e < t.shape[0]; ++e) {
        WeightInfo w;
        w.name = canon.substr(0, star) + "." + std::to_string(e) + canon.substr(star + 2);
        w.file = path;
        w.view.data = const_cast<uint8_t*>(f.tensor_data(t) + static_cast<uint64_t>(e) * per_expert);
        w.view.dtype = t.dtype;
        w.view.shape = Shape{t.shape[1], t.shape[2]};
        ws->add(std::move(w));
      }
      continue;
    }
    WeightInfo w;
    w.name = canon;
    w.file = path;
    w.view.data = const_cast<uint8_t*>(f.tensor_data(t));  // read-only map: views never write
    w.view.dtype = t.dtype;
    w.view.shape = t.shape;
    const bool qk = canon.ends_with(".q_proj") || canon.ends_with(".k_proj") || canon.ends_with(".q_bias") ||
                    canon.ends_with(".k_bias");
    w.permuted_qk = permuted && qk;
    ws->add(std::move(w));
  }
  ws->check_against_config();
  return ws;
}

}  // namespace detail
}  // namespace nanoflow
