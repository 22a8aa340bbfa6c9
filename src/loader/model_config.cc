// ModelConfig: parsing a Hugging Face config.json, derived sizes and consistency checks.
#include "loader/model_config.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/checked.h"
#include "core/error.h"
#include "json_strict.h"

namespace nanoflow {
namespace {

using json = nlohmann::json;

// Typed field access that names the file and the field when something is off.
class Fields {
 public:
  Fields(const json& j, const std::string& source) : j_(j), source_(source) {}

  bool present(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  int64_t integer(const char* key) const {
    if (!present(key)) NF_THROW(kBadFile) << source_ << ": missing field \"" << key << "\"";
    return as_int(j_.at(key), key);
  }
  int64_t integer(const char* key, int64_t fallback) const { return present(key) ? integer(key) : fallback; }

  double number(const char* key, double fallback) const {
    if (!present(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_number()) NF_THROW(kBadFile) << source_ << ": field \"" << key << "\" is not a number";
    const double d = v.get<double>();
    if (!std::isfinite(d)) NF_THROW(kBadFile) << source_ << ": field \"" << key << "\" is not finite";
    return d;
  }

  bool boolean(const char* key, bool fallback) const {
    if (!present(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) NF_THROW(kBadFile) << source_ << ": field \"" << key << "\" is not true/false";
    return v.get<bool>();
  }

  std::string string(const char* key) const {
    if (!present(key)) NF_THROW(kBadFile) << source_ << ": missing field \"" << key << "\"";
    const json& v = j_.at(key);
    if (!v.is_string()) NF_THROW(kBadFile) << source_ << ": field \"" << key << "\" is not a string";
    return v.get<std::string>();
  }

  int64_t as_int(const json& v, const char* key) const {
    if (v.is_number_integer()) return v.get<int64_t>();  // unsigned above INT64_MAX is caught below
    NF_THROW(kBadFile) << source_ << ": field \"" << key << "\" is not an integer";
  }

 private:
  const json& j_;
  const std::string& source_;
};

void parse_rope_scaling(const json& rs, const std::string& source, ModelConfig& c) {
  if (rs.is_null()) return;
  if (!rs.is_object()) NF_THROW(kBadFile) << source << ": \"rope_scaling\" is not an object";
  Fields f(rs, source);
  std::string type = f.present("rope_type") ? f.string("rope_type") : f.present("type") ? f.string("type") : "";
  if (type.empty() || type == "default") return;
  if (type != "llama3")
    NF_THROW(kUnsupported) << source << ": rope scaling type \"" << type << "\" is not supported (only llama3)";
  c.rope_scaling = RopeScaling::kLlama3;
  c.rope_factor = static_cast<float>(f.number("factor", 8.0));
  c.rope_low_freq_factor = static_cast<float>(f.number("low_freq_factor", 1.0));
  c.rope_high_freq_factor = static_cast<float>(f.number("high_freq_factor", 4.0));
  c.rope_original_max_position = f.integer("original_max_position_embeddings", 8192);
}

}  // namespace

ModelConfig parse_hf_config(const std::string& json_text, const std::string& source) {
  const json j = detail::parse_json_strict(json_text, source);
  if (!j.is_object()) NF_THROW(kBadFile) << source << ": config is not a JSON object";
  Fields f(j, source);
  ModelConfig c;
  c.architecture = f.string("model_type");
  if (c.architecture != "llama" && c.architecture != "qwen2" && c.architecture != "mixtral" &&
      c.architecture != "mistral")
    NF_THROW(kUnsupported) << source << ": model_type \"" << c.architecture
                           << "\" is not supported (llama, qwen2, mixtral, mistral)";
  c.vocab_size = f.integer("vocab_size");
  c.hidden_size = f.integer("hidden_size");
  c.intermediate_size = f.integer("intermediate_size");
  c.num_layers = f.integer("num_hidden_layers");
  c.num_heads = f.integer("num_attention_heads");
  c.num_kv_heads = f.integer("num_key_value_heads", c.num_heads);
  if (c.num_heads <= 0) NF_THROW(kBadFile) << source << ": num_attention_heads is " << c.num_heads;
  c.head_dim = f.integer("head_dim", c.hidden_size / c.num_heads);
  c.max_position_embeddings = f.integer("max_position_embeddings", 4096);
  c.rms_norm_eps = static_cast<float>(f.number("rms_norm_eps", 1e-5));
  c.rope_theta = static_cast<float>(f.number("rope_theta", 10000.0));
  if (j.contains("rope_scaling")) parse_rope_scaling(j.at("rope_scaling"), source, c);
  // transformers v5 writes rope settings under rope_parameters.
  if (f.present("rope_parameters")) {
    const json& rp = j.at("rope_parameters");
    if (!rp.is_object()) NF_THROW(kBadFile) << source << ": \"rope_parameters\" is not an object";
    c.rope_theta = static_cast<float>(Fields(rp, source).number("rope_theta", c.rope_theta));
    parse_rope_scaling(rp, source, c);
  }
  // Qwen2 always has Q/K/V biases (its config has no switch); Llama may declare attention_bias.
  c.attention_bias = c.architecture == "qwen2" ? true : f.boolean("attention_bias", false);
  c.tie_word_embeddings = f.boolean("tie_word_embeddings", false);
  if (c.architecture == "mixtral") {
    c.num_experts = f.integer("num_local_experts");
    c.num_experts_per_tok = f.integer("num_experts_per_tok");
  }
  c.bos_token_id = f.integer("bos_token_id", -1);
  if (f.present("eos_token_id")) {
    const json& e = j.at("eos_token_id");
    if (e.is_array()) {
      if (e.empty()) NF_THROW(kBadFile) << source << ": eos_token_id is an empty list";
      for (size_t k = 0; k < e.size(); ++k) {
        const int64_t id = f.as_int(e[k], "eos_token_id");
        if (k == 0)
          c.eos_token_id = id;
        else
          c.extra_eos_token_ids.push_back(id);
      }
    } else {
      c.eos_token_id = f.as_int(e, "eos_token_id");
    }
  }
  c.validate(source);
  return c;
}

int64_t ModelConfig::param_count() const {
  // Checked: configs come from files, and validate() may not have run yet.
  auto mul = [](int64_t a, int64_t b) { return static_cast<int64_t>(checked_mul(a, b, "parameter count")); };
  auto add = [](int64_t a, int64_t b) { return static_cast<int64_t>(checked_add(a, b, "parameter count")); };
  const int64_t h = hidden_size;
  int64_t attn = add(add(mul(h, q_dim()), mul(2, mul(h, kv_dim()))), mul(q_dim(), h));
  if (attention_bias) attn = add(attn, add(q_dim(), mul(2, kv_dim())));
  const int64_t mlp_one = mul(3, mul(h, intermediate_size));
  const int64_t mlp = num_experts > 0 ? add(mul(num_experts, mlp_one), mul(num_experts, h)) : mlp_one;
  const int64_t layer = add(add(attn, mlp), mul(2, h));  // + attn_norm, mlp_norm
  int64_t total = add(mul(num_layers, layer), add(mul(vocab_size, h), h));  // + embeddings, final_norm
  if (!tie_word_embeddings) total = add(total, mul(vocab_size, h));
  return total;
}

int64_t ModelConfig::kv_bytes_per_token(int bytes_per_elem) const {
  return static_cast<int64_t>(
      checked_mul(checked_mul(2, static_cast<uint64_t>(num_layers)), checked_mul(static_cast<uint64_t>(kv_dim()), bytes_per_elem)));
}

void ModelConfig::validate(const std::string& source) const {
  // Generous caps keep later products (param_count, buffers) far from overflow.
  constexpr int64_t kMaxDim = int64_t{1} << 24, kMaxVocab = int64_t{1} << 24, kMaxLayers = 4096;
  auto in_range = [&](const char* what, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) NF_THROW(kBadFile) << source << ": " << what << " is " << v << " (expected " << lo << ".." << hi << ")";
  };
  in_range("vocab_size", vocab_size, 1, kMaxVocab);
  in_range("hidden_size", hidden_size, 1, kMaxDim);
  in_range("intermediate_size", intermediate_size, 1, kMaxDim);
  in_range("num_hidden_layers", num_layers, 1, kMaxLayers);
  in_range("num_attention_heads", num_heads, 1, 4096);
  in_range("num_key_value_heads", num_kv_heads, 1, 4096);
  in_range("head_dim", head_dim, 1, 4096);
  in_range("max_position_embeddings", max_position_embeddings, 1, int64_t{1} << 32);
  if (head_dim == hidden_size / num_heads && hidden_size % num_heads != 0)
    NF_THROW(kBadFile) << source << ": num_attention_heads " << num_heads << " does not divide hidden_size " << hidden_size;
  if (num_heads % num_kv_heads != 0)
    NF_THROW(kBadFile) << source << ": num_key_value_heads " << num_kv_heads << " does not divide num_attention_heads " << num_heads;
  if (head_dim % 2 != 0) NF_THROW(kBadFile) << source << ": head_dim " << head_dim << " is odd (rotary needs pairs)";
  if (!(rms_norm_eps > 0.0f) || !std::isfinite(rms_norm_eps)) NF_THROW(kBadFile) << source << ": rms_norm_eps " << rms_norm_eps << " is not positive";
  if (!(rope_theta > 0.0f) || !std::isfinite(rope_theta)) NF_THROW(kBadFile) << source << ": rope_theta " << rope_theta << " is not positive";
  if (rope_scaling == RopeScaling::kLlama3) {
    if (!(rope_factor >= 1.0f) || !std::isfinite(rope_factor) || !(rope_high_freq_factor > rope_low_freq_factor) ||
        !(rope_low_freq_factor > 0.0f) || !std::isfinite(rope_high_freq_factor) || rope_original_max_position <= 0)
      NF_THROW(kBadFile) << source << ": invalid llama3 rope scaling (factor " << rope_factor << ", low " << rope_low_freq_factor
                         << ", high " << rope_high_freq_factor << ", original max " << rope_original_max_position << ")";
  }
  if (num_experts < 0 || num_experts > 1024) NF_THROW(kBadFile) << source << ": num_local_experts is " << num_experts;
  if (num_experts > 0 && (num_experts_per_tok < 1 || num_experts_per_tok > num_experts))
    NF_THROW(kBadFile) << source << ": num_experts_per_tok " << num_experts_per_tok << " is not in 1.." << num_experts;
  for (int64_t id : {bos_token_id, eos_token_id})
    if (id < -1 || id >= vocab_size) NF_THROW(kBadFile) << source << ": special token id " << id << " is outside the vocabulary of " << vocab_size;
  for (int64_t id : extra_eos_token_ids)
    if (id < 0 || id >= vocab_size) NF_THROW(kBadFile) << source << ": eos token id " << id << " is outside the vocabulary of " << vocab_size;
  param_count();  // throws on overflow
}

}  // namespace nanoflow
