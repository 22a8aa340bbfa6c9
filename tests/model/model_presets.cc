// Random-weight presets read their shapes from the real config.json files in ../shared/models
// (model/presets.h): the parsed configs carry the published sizes, and unknown names or missing
// folders give clear errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "model/presets.h"

using namespace nanoflow;

namespace {

class Presets : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = std::string(NF_SHARED_DIR) + "/models";
    if (!std::filesystem::exists(dir + "/Meta-Llama-3-8B-Instruct/config.json")) GTEST_SKIP() << dir << " absent";
    setenv("NANOFLOW_MODELS_DIR", dir.c_str(), 1);
  }
};

TEST_F(Presets, RealShapes) {
  const auto l3 = resolve_preset(*find_preset("preset:llama3-8b"));
  EXPECT_EQ(l3.config.hidden_size, 4096);
  EXPECT_EQ(l3.config.num_layers, 32);
  EXPECT_EQ(l3.config.num_kv_heads, 8);
  EXPECT_EQ(l3.config.intermediate_size, 14336);
  EXPECT_EQ(l3.config.vocab_size, 128256);
  EXPECT_NEAR(static_cast<double>(l3.config.param_count()), 8.03e9, 0.01e9);
  EXPECT_FALSE(l3.tokenizer_dir.empty());
  EXPECT_EQ(l3.config.name, "preset:llama3-8b");

  const auto q = resolve_preset(*find_preset("preset:qwen2-7b"));
  EXPECT_TRUE(q.config.attention_bias);
  EXPECT_EQ(q.config.num_heads, 28);
  EXPECT_EQ(q.config.num_kv_heads, 4);

  const auto mx = resolve_preset(*find_preset("preset:mixtral-8x7b"));
  EXPECT_EQ(mx.config.num_experts, 8);
  EXPECT_EQ(mx.config.num_experts_per_tok, 2);
  EXPECT_NEAR(static_cast<double>(mx.config.param_count()), 46.7e9, 0.2e9);

  const auto l70 = resolve_preset(*find_preset("preset:llama3-70b"));
  EXPECT_EQ(l70.config.num_layers, 80);
  EXPECT_EQ(l70.config.hidden_size, 8192);
  const auto l2 = resolve_preset(*find_preset("preset:llama2-70b"));
  EXPECT_EQ(l2.config.num_kv_heads, 8);
  EXPECT_EQ(l2.config.vocab_size, 32000);
  const auto q72 = resolve_preset(*find_preset("preset:qwen2-72b"));
  EXPECT_EQ(q72.config.num_layers, 80);
  EXPECT_FALSE(q72.tokenizer_dir.empty());  // the Qwen2-7B tokenizer.json (same vocabulary)
}

TEST_F(Presets, Errors) {
  EXPECT_FALSE(find_preset("models/x.gguf").has_value());
  try {
    find_preset("preset:gpt5");
    ADD_FAILURE() << "unknown preset accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("llama3-8b"), std::string::npos) << e.what();
  }
  setenv("NANOFLOW_MODELS_DIR", "/nonexistent", 1);
  // Other search folders may still hold it (../shared/models relative to the test's cwd); a
  // preset whose folder exists nowhere fails with kNotFound naming what was searched.
  PresetInfo fake{"fake", "No-Such-Model", "No-Such-Model"};
  try {
    resolve_preset(fake);
    ADD_FAILURE() << "missing config accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("No-Such-Model"), std::string::npos) << e.what();
  }
}

}  // namespace
