// parse_hf_config and ModelConfig checks. The real configs come from ../shared/models (skipped when
// absent); the parameter counts are those the acceptance names (Hugging Face model cards).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mmap.h"
#include "loader/model_config.h"
#include "loader/model_files.h"
#include "loader_test_util.h"

namespace nanoflow {
namespace {

using test::expect_refusal;

std::string shared_model(const std::string& name) { return std::string(NF_SHARED_DIR) + "/models/" + name; }

ModelConfig shared_config(const std::string& name) {
  const std::string dir = shared_model(name);
  if (!std::filesystem::exists(dir + "/config.json")) return {};
  return read_model_config(dir);
}

#define SKIP_IF_ABSENT(c, name) \
  if ((c).num_layers == 0) GTEST_SKIP() << "no " << shared_model(name)

TEST(HfConfig, Llama3_8B) {
  ModelConfig c = shared_config("Meta-Llama-3-8B-Instruct");
  SKIP_IF_ABSENT(c, "Meta-Llama-3-8B-Instruct");
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.num_layers, 32);
  EXPECT_EQ(c.num_heads, 32);
  EXPECT_EQ(c.num_kv_heads, 8);
  EXPECT_EQ(c.head_dim, 128);
  EXPECT_EQ(c.vocab_size, 128256);
  EXPECT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kNone);
  EXPECT_EQ(c.eos_token_id, 128009);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_NEAR(c.param_count() / 1e9, 8.03, 0.005);
  EXPECT_EQ(c.kv_bytes_per_token(2), 2 * 32 * 8 * 128 * 2);
}

TEST(HfConfig, Llama31RopeScalingAndEosList) {
  ModelConfig c = shared_config("Meta-Llama-3.1-8B-Instruct");
  SKIP_IF_ABSENT(c, "Meta-Llama-3.1-8B-Instruct");
  EXPECT_EQ(c.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c.rope_factor, 8.0f);
  EXPECT_EQ(c.rope_low_freq_factor, 1.0f);
  EXPECT_EQ(c.rope_high_freq_factor, 4.0f);
  EXPECT_EQ(c.rope_original_max_position, 8192);
  EXPECT_EQ(c.eos_token_id, 128001);
  EXPECT_EQ(c.extra_eos_token_ids, (std::vector<int64_t>{128008, 128009}));
  EXPECT_EQ(c.max_position_embeddings, 131072);
}

TEST(HfConfig, Mixtral) {
  ModelConfig c = shared_config("Mixtral-8x7B-Instruct-v0.1");
  SKIP_IF_ABSENT(c, "Mixtral-8x7B-Instruct-v0.1");
  EXPECT_EQ(c.architecture, "mixtral");
  EXPECT_EQ(c.num_experts, 8);
  EXPECT_EQ(c.num_experts_per_tok, 2);
  EXPECT_NEAR(c.param_count() / 1e9, 46.7, 0.05);
}

TEST(HfConfig, Qwen2) {
  ModelConfig c = shared_config("Qwen2-72B-Instruct");
  SKIP_IF_ABSENT(c, "Qwen2-72B-Instruct");
  EXPECT_EQ(c.architecture, "qwen2");
  EXPECT_TRUE(c.attention_bias);
  EXPECT_NEAR(c.param_count() / 1e9, 72.7, 0.05);
  ModelConfig s = shared_config("Qwen2-7B-Instruct");
  SKIP_IF_ABSENT(s, "Qwen2-7B-Instruct");
  EXPECT_NEAR(s.param_count() / 1e9, 7.62, 0.005);  // Qwen2-7B card: 7.62B
}

TEST(HfConfig, Llama2) {
  ModelConfig c = shared_config("Llama-2-7b-chat-hf");
  SKIP_IF_ABSENT(c, "Llama-2-7b-chat-hf");
  EXPECT_EQ(c.num_kv_heads, 32);
  EXPECT_EQ(c.rope_theta, 10000.0f);  // absent in the file: the Llama default
  EXPECT_NEAR(c.param_count() / 1e9, 6.74, 0.005);
}

const char* kSmol = R"({"model_type":"llama","vocab_size":49152,"hidden_size":576,"intermediate_size":1536,
  "num_hidden_layers":30,"num_attention_heads":9,"num_key_value_heads":3,"tie_word_embeddings":true,
  "rope_theta":100000,"rms_norm_eps":1e-05,"bos_token_id":1,"eos_token_id":2,"head_dim":null})";

TEST(HfConfig, SmolLM2TiedEmbeddings) {
  ModelConfig c = parse_hf_config(kSmol, "config.json");
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.head_dim, 64);  // hidden / heads
  EXPECT_EQ(c.param_count(), 134515008);  // SmolLM2-135M
  EXPECT_EQ(c.kv_bytes_per_token(2), 2 * 30 * 192 * 2);
}

std::string with(const std::string& base, const std::string& key, const std::string& value) {
  auto j = nlohmann::json::parse(base);
  if (value.empty())
    j.erase(key);
  else
    j[key] = nlohmann::json::parse(value);
  return j.dump();
}

TEST(HfConfig, Refusals) {
  auto refuse = [](const std::string& text, std::initializer_list<std::string> needles) {
    expect_refusal([&] { parse_hf_config(text, "cfg/config.json"); }, needles);
  };
  refuse("{", {"cfg/config.json", "not valid JSON"});
  refuse("[1]", {"cfg/config.json", "not a JSON object"});
  refuse(with(kSmol, "num_attention_heads", "7"), {"cfg/config.json", "does not divide hidden_size 576"});
  refuse(with(kSmol, "num_key_value_heads", "2"), {"cfg/config.json", "num_key_value_heads 2 does not divide"});
  refuse(with(kSmol, "hidden_size", ""), {"cfg/config.json", "missing field \"hidden_size\""});
  refuse(with(kSmol, "model_type", ""), {"cfg/config.json", "missing field \"model_type\""});
  refuse(with(kSmol, "model_type", "\"gpt2\""), {"cfg/config.json", "gpt2", "not supported"});
  refuse(with(kSmol, "vocab_size", "\"big\""), {"cfg/config.json", "\"vocab_size\" is not an integer"});
  refuse(with(kSmol, "vocab_size", "-5"), {"cfg/config.json", "vocab_size is -5"});
  refuse(with(kSmol, "num_hidden_layers", "0"), {"cfg/config.json", "num_hidden_layers is 0"});
  refuse(with(kSmol, "hidden_size", "1e300"), {"cfg/config.json", "not an integer"});
  refuse(with(kSmol, "hidden_size", "99999999999999999999"), {"cfg/config.json", "hidden_size"});
  refuse(with(kSmol, "rope_scaling", R"({"rope_type":"yarn","factor":4})"), {"cfg/config.json", "yarn", "not supported"});
  refuse(with(kSmol, "rope_scaling", R"({"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":1})"),
         {"cfg/config.json", "invalid llama3 rope scaling"});
  refuse(with(kSmol, "eos_token_id", "[]"), {"cfg/config.json", "empty list"});
  refuse(with(kSmol, "eos_token_id", "[2, 49152]"), {"cfg/config.json", "outside the vocabulary"});
  refuse(with(kSmol, "rms_norm_eps", "-1"), {"cfg/config.json", "rms_norm_eps"});
  refuse(with(with(kSmol, "model_type", "\"mixtral\""), "num_local_experts", "8"), {"cfg/config.json", "num_experts_per_tok"});
  refuse(R"({"a":1,"a":2})", {"cfg/config.json", "duplicate key"});
}

TEST(ModelConfigFiles, ReadModelConfigRefusesMissingAndUnknownPaths) {
  test::TempDir dir;
  expect_refusal([&] { read_model_config(dir.path.string()); }, {dir.path.string(), "no config.json"});
  expect_refusal([&] { read_model_config((dir.path / "nope").string()); }, {"nope", "no such file"});
  const std::string txt = dir.write("model.bin", std::string("x"));
  expect_refusal([&] { read_model_config(txt); }, {"model.bin", "not a model folder or a .gguf file"});
}

}  // namespace
}  // namespace nanoflow
