// WeightStore over the default GGUF: config from metadata, canonical names, and Q/K rows in Hugging
// Face order — compared with transformers' own GGUF loading (golden fingerprints made by
// tools/loader/make_qk_golden.py: per-row sum, sum of squares and first 4 values).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mmap.h"
#include "loader/weights.h"

namespace nanoflow {
namespace {

const std::string kGguf = std::string(NF_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kGolden = std::string(NF_SOURCE_DIR) + "/tests/data/loader/smollm2_qk_rows.json";

class GgufWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kGguf)) GTEST_SKIP() << "no " << kGguf;
    ws_ = WeightStore::open(kGguf);
  }
  std::unique_ptr<WeightStore> ws_;
};

TEST_F(GgufWeights, ConfigFromMetadata) {
  const ModelConfig& c = ws_->config();
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.num_layers, 30);
  EXPECT_EQ(c.num_heads, 9);
  EXPECT_EQ(c.num_kv_heads, 3);
  EXPECT_EQ(c.hidden_size, 576);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attention_bias);
  EXPECT_FLOAT_EQ(c.rope_theta, 100000.0f);
  EXPECT_FLOAT_EQ(c.rms_norm_eps, 1e-5f);
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_id, 2);
  EXPECT_EQ(c.param_count(), 134515008);
}

TEST_F(GgufWeights, CanonicalNames) {
  EXPECT_EQ(ws_->names().size(), 272u);
  EXPECT_FALSE(ws_->has("lm_head"));
  EXPECT_EQ(ws_->get("embed_tokens").view.dtype, DType::kQ8_0);
  EXPECT_EQ(ws_->get("layers.29.down_proj").view.shape, (Shape{576, 1536}));
  EXPECT_TRUE(ws_->get("layers.0.q_proj").permuted_qk);
  EXPECT_TRUE(ws_->get("layers.0.k_proj").permuted_qk);
  EXPECT_FALSE(ws_->get("layers.0.v_proj").permuted_qk);
}

TEST_F(GgufWeights, QkRowsMatchTransformers) {
  const auto golden = nlohmann::json::parse(read_text_file(kGolden));
  ASSERT_GE(golden["tensors"].size(), 6u);
  for (const auto& [name, g] : golden["tensors"].items()) {
    SCOPED_TRACE(name);
    const int64_t rows = g["shape"][0], cols = g["shape"][1];
    ASSERT_EQ(ws_->get(name).view.shape, (Shape{rows, cols}));
    std::vector<float> w(static_cast<size_t>(rows * cols));
    ws_->read_f32(name, w.data());
    int bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0, sumsq = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double x = w[r * cols + c];
        sum += x;
        sumsq += x * x;
      }
      const double gs = g["row_sum"][r], gq = g["row_sumsq"][r];
      bad += std::abs(sum - gs) > 1e-6 * (1 + std::abs(gs)) || std::abs(sumsq - gq) > 1e-6 * (1 + gq);
      for (int c = 0; c < 4; ++c) bad += w[r * cols + c] != static_cast<float>(g["row_head4"][r][c].get<double>());
    }
    EXPECT_EQ(bad, 0) << "rows differing from transformers";
  }
}

TEST_F(GgufWeights, Bf16PathIsRoundedF32Path) {
  for (const char* name : {"layers.0.q_proj", "layers.3.v_proj", "final_norm", "embed_tokens"}) {
    const size_t n = static_cast<size_t>(ws_->get(name).view.numel());
    std::vector<float> f(n);
    std::vector<uint16_t> b(n);
    ws_->read_f32(name, f.data());
    ws_->read_bf16(name, b.data());
    size_t mismatches = 0;
    for (size_t i = 0; i < n; ++i) mismatches += b[i] != f32_to_bf16(f[i]);
    EXPECT_EQ(mismatches, 0u) << name;
    // Real weights vary: guard against a path that silently yields zeros.
    float lo = f[0], hi = f[0];
    for (float x : f) lo = std::min(lo, x), hi = std::max(hi, x);
    EXPECT_LT(lo, hi) << name;
  }
}

}  // namespace
}  // namespace nanoflow
