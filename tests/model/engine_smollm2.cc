// The engine end to end on the CPU backend with the real SmolLM2-135M-Instruct GGUF:
// batched == solo (greedy), a KV pool for ~4 sequences under 32 concurrent requests (preemptions,
// same outputs), seeded sampling in and out of a batch, and stop strings split across tokens.
// "Solo" runs use a separate engine, one request at a time, prefix caching off.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "nanoflow/engine.h"

namespace nanoflow {
namespace {

const std::string kModel = std::string(NF_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";

struct Out {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kNone;
};

std::vector<Out> wait_all(std::vector<std::shared_ptr<RequestHandle>>& hs) {
  std::vector<Out> outs(hs.size());
  for (size_t i = 0; i < hs.size(); ++i) {
    TokenEvent ev;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
    while (!hs[i]->done() && std::chrono::steady_clock::now() < deadline) {
      if (!hs[i]->next(&ev, std::chrono::milliseconds(200))) continue;
      for (auto& t : ev.tokens) outs[i].tokens.push_back(t.token);
      outs[i].text += ev.text;
      if (ev.finish != FinishReason::kNone) outs[i].finish = ev.finish;
    }
    EXPECT_TRUE(hs[i]->done()) << "request " << i << " did not finish";
  }
  return outs;
}

std::vector<Out> run(Engine& e, const std::vector<GenerateRequest>& reqs) {
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (auto& r : reqs) hs.push_back(e.submit(r));
  return wait_all(hs);
}

std::vector<Out> run_solo(Engine& e, const std::vector<GenerateRequest>& reqs) {
  std::vector<Out> outs;
  for (auto& r : reqs) outs.push_back(run(e, {r})[0]);
  return outs;
}

class EngineSmolLM2 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(kModel)) return;
    EngineConfig c;
    c.model_path = kModel;
    c.enable_prefix_caching = false;
    c.num_kv_pages = 256;
    c.max_running = 1;
    c.prefix_hash_seed = 1;
    solo_ = Engine::create(c).release();
  }
  static void TearDownTestSuite() {
    delete solo_;
    solo_ = nullptr;
  }
  void SetUp() override {
    if (!solo_) GTEST_SKIP() << kModel << " is absent";
  }
  static std::unique_ptr<Engine> batched(int64_t pages, int32_t max_running, int32_t budget) {
    EngineConfig c;
    c.model_path = kModel;
    c.num_kv_pages = pages;
    c.max_running = max_running;
    c.max_batch_tokens = budget;
    c.prefix_hash_seed = 2;
    return Engine::create(c);
  }
  static std::vector<GenerateRequest> mixed(int count, int32_t max_tokens_cap, uint64_t seed, bool sampled) {
    const Tokenizer& tok = solo_->tokenizer();
    static const char* kTopics[] = {"the ocean", "a small robot", "bread", "the moon", "winter in Oslo",
                                    "prime numbers", "a lost key", "trains", "coffee", "a quiet library"};
    const std::string system = "You are a helpful assistant. Answer briefly and clearly, in one sentence. ";
    std::mt19937_64 rng(seed);
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < count; ++i) {
      std::string text = (i % 2 ? system : std::string()) + "Write about " + kTopics[i % 10] + ".";
      if (i % 3 == 0) text += " Mention the number " + std::to_string(i) + ".";
      GenerateRequest r;
      r.prompt_ids = tok.encode(text, true);
      r.params.max_tokens = 2 + static_cast<int32_t>(rng() % static_cast<uint64_t>(max_tokens_cap - 1));
      r.params.temperature = 0.0f;
      if (sampled) {
        r.params.temperature = 0.8f;
        r.params.top_p = 0.95f;
        r.params.seed = 1000 + static_cast<uint64_t>(i);
      }
      reqs.push_back(std::move(r));
    }
    return reqs;
  }
  static void expect_baseline(Engine& e) {
    for (int i = 0; i < 200 && (e.stats().live_requests || e.stats().kv_pages_used); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_EQ(e.stats().kv_pages_used, 0);
    EXPECT_EQ(e.stats().live_requests, 0);
  }
  static Engine* solo_;
};
Engine* EngineSmolLM2::solo_ = nullptr;

TEST_F(EngineSmolLM2, SixtyFourMixedRequestsBatchedEqualSolo) {
  auto reqs = mixed(64, 8, 1, false);
  auto expected = run_solo(*solo_, reqs);
  auto e = batched(512, 64, 256);
  auto got = run(*e, reqs);
  int64_t tokens = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
    EXPECT_EQ(got[i].text, expected[i].text) << "request " << i;
    EXPECT_EQ(got[i].finish, expected[i].finish) << "request " << i;
    tokens += static_cast<int64_t>(got[i].tokens.size());
  }
  EXPECT_GT(tokens, 64 * 2);
  EXPECT_GT(e->stats().prefix_hits, 0);
  expect_baseline(*e);
}

TEST_F(EngineSmolLM2, PoolForFourSequencesPreemptsAndMatchesSolo) {
  // Longer, distinct prompts (no shared prefix pages) and longer outputs, so that a sequence
  // needs several pages and growth runs out of them: the pool holds 4 sequences at full length,
  // while admission (by the pages of the prompt) lets more in.
  const Tokenizer& tok = solo_->tokenizer();
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 32; ++i) {
    GenerateRequest r;
    r.prompt_ids = tok.encode("Request " + std::to_string(i * 37) +
                                  ". Please write a long, friendly paragraph for a child about why the sky "
                                  "looks blue during the day and red in the evening.",
                              true);
    r.params.max_tokens = 12 + (i % 4) * 4;
    r.params.temperature = 0.0f;
    r.params.ignore_eos = true;
    reqs.push_back(std::move(r));
  }
  int64_t max_pages = 0;
  for (auto& r : reqs)
    max_pages = std::max<int64_t>(max_pages, (static_cast<int64_t>(r.prompt_ids.size()) + r.params.max_tokens + 15) / 16);
  auto expected = run_solo(*solo_, reqs);
  auto e = batched(4 * max_pages, 32, 128);
  auto got = run(*e, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
    EXPECT_EQ(got[i].text, expected[i].text) << "request " << i;
  }
  EXPECT_GT(e->stats().preemptions, 0) << "pool of " << 4 * max_pages << " pages";
  expect_baseline(*e);
}

TEST_F(EngineSmolLM2, SeededSamplingSameInAndOutOfBatch) {
  auto reqs = mixed(6, 8, 3, true);
  auto expected = run_solo(*solo_, reqs);
  auto e = batched(256, 16, 128);
  auto got = run(*e, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i].tokens, expected[i].tokens) << "request " << i;
  auto again = run(*e, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(again[i].tokens, expected[i].tokens) << "request " << i;
  expect_baseline(*e);
}

TEST_F(EngineSmolLM2, GreedyChoicesForkedFromThePromptEqualTheSingleOutput) {
  // n = 3 greedy: choices 1 and 2 fork choice 0's pages (copy-on-write of the partial last page
  // through Model::copy_page), so all three must equal the n = 1 output.
  const Tokenizer& tok = solo_->tokenizer();
  GenerateRequest r;
  r.prompt_ids = tok.encode("List three colors of the rainbow and one animal that lives in the sea:", true);
  ASSERT_NE(r.prompt_ids.size() % 16, 0u);
  r.params.temperature = 0.0f;
  r.params.max_tokens = 10;
  r.params.ignore_eos = true;
  auto single = run(*solo_, {r})[0];
  r.params.n = 3;
  auto e = batched(64, 8, 128);
  auto h = e->submit(r);
  std::vector<Out> choices(3);
  TokenEvent ev;
  while (!h->done())
    if (h->next(&ev, std::chrono::milliseconds(200))) {
      for (auto& t : ev.tokens) choices[static_cast<size_t>(ev.index)].tokens.push_back(t.token);
      choices[static_cast<size_t>(ev.index)].text += ev.text;
    }
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ(choices[static_cast<size_t>(c)].tokens, single.tokens) << "choice " << c;
    EXPECT_EQ(choices[static_cast<size_t>(c)].text, single.text) << "choice " << c;
  }
  expect_baseline(*e);
}

TEST_F(EngineSmolLM2, StopStringAcrossTokensIsHonored) {
  const Tokenizer& tok = solo_->tokenizer();
  GenerateRequest r;
  r.prompt_ids = tok.encode("The capital of France is", true);
  r.params.temperature = 0.0f;
  r.params.max_tokens = 12;
  auto full = run(*solo_, {r})[0];
  ASSERT_GE(full.tokens.size(), 4u);
  // A stop string made of the last 2 bytes of token k's text and the first 2 of token k+1's,
  // checked to occur first exactly at that boundary.
  std::string stop;
  size_t cut = 0;
  for (size_t k = 1; k + 1 < full.tokens.size() && stop.empty(); ++k) {
    const std::string before = tok.decode(std::span(full.tokens).first(k + 1), true);
    const std::string after = tok.decode(std::span(full.tokens).first(k + 2), true);
    if (before.size() < 2 || after.size() < before.size() + 2 || after.compare(0, before.size(), before) != 0) continue;
    const std::string cand = before.substr(before.size() - 2) + after.substr(before.size(), 2);
    if (full.text.find(cand) == before.size() - 2) stop = cand, cut = before.size() - 2;
  }
  ASSERT_FALSE(stop.empty()) << "no usable token boundary in: " << full.text;
  r.params.stop = {stop};
  auto got = run(*solo_, {r})[0];
  EXPECT_EQ(got.finish, FinishReason::kStop);
  EXPECT_EQ(got.text, full.text.substr(0, cut)) << "stop string '" << stop << "' in '" << full.text << "'";
}

}  // namespace
}  // namespace nanoflow
