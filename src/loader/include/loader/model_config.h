// One ModelConfig for the whole Llama family (Llama 2/3/3.1, Qwen2, Mixtral, SmolLM2), filled from
// a Hugging Face config.json or from GGUF metadata. Architecture differences are switches, not types.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nanoflow {

enum class RopeScaling : uint8_t { kNone, kLlama3 };

struct ModelConfig {
  std::string architecture;   // "llama", "qwen2", "mixtral" (HF model_type / GGUF general.architecture)
  std::string name;           // display name (folder/file name unless set)
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;  // per expert for MoE
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;           // hidden_size / num_heads unless given
  int64_t max_position_embeddings = 0;
  float rms_norm_eps = 1e-5f;
  float rope_theta = 10000.0f;
  // Llama 3.1 "llama3" rope scaling
  RopeScaling rope_scaling = RopeScaling::kNone;
  float rope_factor = 1.0f;
  float rope_low_freq_factor = 1.0f;
  float rope_high_freq_factor = 4.0f;
  int64_t rope_original_max_position = 8192;
  bool attention_bias = false;    // QKV bias (Qwen2)
  bool tie_word_embeddings = false;
  int64_t num_experts = 0;        // 0 = dense MLP
  int64_t num_experts_per_tok = 0;
  int64_t bos_token_id = -1;
  int64_t eos_token_id = -1;      // primary EOS; see extra_eos_token_ids
  std::vector<int64_t> extra_eos_token_ids;

  // Derived sizes.
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
  int64_t param_count() const;           // all weights, embeddings (+ untied LM head) included
  int64_t kv_bytes_per_token(int bytes_per_elem = 2) const;  // K and V, all layers
  // Throws Error(kBadFile) with `source` (the file name) and the reason when inconsistent:
  // heads not dividing hidden size, kv heads not dividing heads, non-positive sizes, ...
  void validate(const std::string& source) const;
};

// Parses a Hugging Face config.json (the text). `source` names the file in errors.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source);

}  // namespace nanoflow
