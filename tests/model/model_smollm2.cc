// SmolLM2-135M-Instruct (the default model, Q4_1 GGUF dequantized to f32) against transformers
// loading the same GGUF (tests/data/golden/smollm2_gguf, tools/golden/make_goldens.py): greedy
// continuations of 8 prompts x 32 tokens identical, first-step logits within 1e-3. The prompts
// are decoded together as one batch (mixed prefill + decode steps), which is also the fast way
// to run them on 2 cores.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "model/model.h"
#include "model/simple_runner.h"
#include "unit/model_golden_util.h"

using namespace nanoflow;

namespace {

const std::string kModel = std::string(NF_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kGolden = std::string(NF_SOURCE_DIR) + "/tests/data/golden/smollm2_gguf";

TEST(SmolLM2, GreedyAndLogitsMatchTransformers) {
  if (!std::filesystem::exists(kModel)) GTEST_SKIP() << "model file absent: " << kModel;
  const auto g = golden::read_golden(kGolden);
  auto model = Model::load_cpu(kModel, {.num_threads = 0, .num_kv_pages = 64});
  const int64_t vocab = model->config().vocab_size;
  ASSERT_EQ(vocab, 49152);

  SimpleRunner r(*model);
  const size_t n = g.prompts.size();
  ASSERT_GE(n, 8u);
  std::vector<int> ids;
  for (auto& p : g.prompts) ids.push_back(r.add_sequence(p));
  std::vector<std::vector<int32_t>> out(n);
  std::vector<float> logits;
  // Step 1: every prompt prefilled in one batch; later steps: one decode token per sequence.
  for (int step = 0; step < static_cast<int>(g.greedy[0].size()); ++step) {
    std::vector<SimpleRunner::Work> work;
    for (size_t i = 0; i < n; ++i) work.push_back({ids[i], r.pending(ids[i]), true});
    r.step(work, logits);
    for (size_t i = 0; i < n; ++i) {
      std::span<const float> row(logits.data() + i * vocab, vocab);
      if (step == 0) {
        auto it = g.logits.find("prompt" + std::to_string(i) + "_last");
        if (it != g.logits.end()) {
          float d = 0;
          for (int64_t v = 0; v < vocab; ++v) d = std::max(d, std::abs(row[v] - it->second.data[v]));
          std::printf("prompt %zu first-step max |logit - transformers| = %.3g\n", i, d);
          EXPECT_LT(d, 1e-3f) << "prompt " << i;
        }
      }
      const int32_t t = argmax(row);
      out[i].push_back(t);
      r.append_token(ids[i], t);
    }
  }
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(out[i], g.greedy[i]) << "prompt " << i << ": " << g.meta["texts"][i];
}

}  // namespace
