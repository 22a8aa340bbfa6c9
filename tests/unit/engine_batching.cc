// The engine end to end on fakes (engine_fakes.h): batched == solo, preemption by recompute,
// seeded sampling in and out of a batch, n > 1 forks, stop strings, aborts at any phase, limits,
// and the pool back at baseline after every test.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "engine_fakes.h"
#include "nanoflow/engine.h"

namespace nanoflow {
namespace {

using testing::FakeModel;
using testing::FakeTokenizer;

constexpr int32_t kVocab = 64;

struct ChoiceOut {
  std::vector<int32_t> tokens;
  std::string text;
  FinishReason finish = FinishReason::kNone;
  int32_t completion_tokens = 0, cached_tokens = 0;
  bool operator==(const ChoiceOut& o) const {
    return tokens == o.tokens && text == o.text && finish == o.finish && completion_tokens == o.completion_tokens;
  }
};
using RequestOut = std::vector<ChoiceOut>;

std::unique_ptr<Engine> make(int64_t pages, int32_t budget, int32_t max_running, int sleep_us = 0,
                             int32_t max_queued = 1024) {
  EngineConfig c;
  c.max_batch_tokens = budget;
  c.max_running = max_running;
  c.max_queued = max_queued;
  c.prefix_hash_seed = 1234;
  return Engine::create(std::make_unique<FakeModel>(kVocab, pages, 4096, sleep_us),
                        std::make_unique<FakeTokenizer>(kVocab), c);
}

RequestOut collect(RequestHandle& h, int32_t n) {
  RequestOut out(static_cast<size_t>(n));
  TokenEvent ev;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!h.done()) {
    EXPECT_LT(std::chrono::steady_clock::now(), deadline) << "request " << h.id() << " hangs";
    if (std::chrono::steady_clock::now() > deadline) break;
    if (!h.next(&ev, std::chrono::milliseconds(100))) continue;
    auto& c = out.at(static_cast<size_t>(ev.index));
    EXPECT_EQ(c.finish, FinishReason::kNone) << "event after the final one";
    for (auto& t : ev.tokens) c.tokens.push_back(t.token);
    c.text += ev.text;
    if (ev.finish != FinishReason::kNone) {
      c.finish = ev.finish;
      c.completion_tokens = ev.completion_tokens;
      c.cached_tokens = ev.cached_tokens;
    }
  }
  return out;
}

std::vector<RequestOut> run_all(Engine& e, const std::vector<GenerateRequest>& reqs) {
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (const auto& r : reqs) hs.push_back(e.submit(r));
  std::vector<RequestOut> outs;
  for (size_t i = 0; i < hs.size(); ++i) outs.push_back(collect(*hs[i], reqs[i].params.n));
  return outs;
}

void expect_baseline(Engine& e) {
  // The engine reaps asynchronously after the last event; give it a moment.
  for (int i = 0; i < 100 && (e.stats().live_requests != 0 || e.stats().kv_pages_used != 0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const auto s = e.stats();
  EXPECT_EQ(s.live_requests, 0);
  EXPECT_EQ(s.kv_pages_used, 0);
  EXPECT_EQ(s.kv_pages_free, s.kv_pages_total);
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
}

std::vector<GenerateRequest> mixed_requests(int count, uint64_t seed, bool sampled) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> shared(48);
  for (auto& t : shared) t = 1 + static_cast<int32_t>(rng() % (kVocab - 1));
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < count; ++i) {
    GenerateRequest r;
    const int len = 1 + static_cast<int>(rng() % 60);
    if (i % 3 == 0) r.prompt_ids.assign(shared.begin(), shared.begin() + std::min<int>(len, 48));
    while (static_cast<int>(r.prompt_ids.size()) < len) r.prompt_ids.push_back(1 + static_cast<int32_t>(rng() % (kVocab - 1)));
    r.params.max_tokens = 1 + static_cast<int32_t>(rng() % 40);
    r.params.temperature = sampled ? 0.8f : 0.0f;
    if (sampled) {
      r.params.seed = rng();
      r.params.top_p = 0.9f;
      r.params.top_k = i % 2 ? 20 : 0;
    }
    if (i % 5 == 0) r.params.ignore_eos = true;
    if (i % 7 == 0) r.params.repetition_penalty = 1.3f;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

std::vector<RequestOut> solo(const std::vector<GenerateRequest>& reqs) {
  std::vector<RequestOut> outs;
  for (const auto& r : reqs) {
    auto e = make(512, 512, 8);
    outs.push_back(run_all(*e, {r})[0]);
    expect_baseline(*e);
  }
  return outs;
}

TEST(EngineBatching, GreedyBatchedEqualsSolo) {
  auto reqs = mixed_requests(48, 1, false);
  auto expected = solo(reqs);
  auto e = make(512, 64, 64);
  auto got = run_all(*e, reqs);
  int64_t total_tokens = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i][0].tokens, expected[i][0].tokens) << "request " << i;
    EXPECT_EQ(got[i][0].text, expected[i][0].text) << "request " << i;
    EXPECT_EQ(got[i][0].finish, expected[i][0].finish) << "request " << i;
    total_tokens += static_cast<int64_t>(got[i][0].tokens.size());
  }
  EXPECT_GT(total_tokens, 200);
  const auto s = e->stats();
  EXPECT_GT(s.prefix_hits, 0) << "shared prompts should hit the prefix cache";
  EXPECT_GT(s.finished_stop, 0);
  EXPECT_GT(s.finished_length, 0);
  expect_baseline(*e);
}

TEST(EngineBatching, SmallPoolPreemptsAndStillMatchesSolo) {
  // Requests need up to ceil((60 + 40) / 16) = 7 pages; 28 pages is about 4 sequences.
  auto reqs = mixed_requests(32, 2, false);
  for (auto& r : reqs) r.params.ignore_eos = true;
  auto expected = solo(reqs);
  auto e = make(28, 64, 32);
  auto got = run_all(*e, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) EXPECT_EQ(got[i], expected[i]) << "request " << i;
  EXPECT_GT(e->stats().preemptions, 0);
  expect_baseline(*e);
}

TEST(EngineBatching, SeededSamplingSameInAndOutOfBatch) {
  auto reqs = mixed_requests(24, 3, true);
  auto expected = solo(reqs);
  auto e = make(40, 48, 24);  // small pool: preemption must not change sampled outputs either
  auto got = run_all(*e, reqs);
  std::set<int32_t> distinct;
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(got[i], expected[i]) << "request " << i;
    for (int32_t t : got[i][0].tokens) distinct.insert(t);
  }
  EXPECT_GT(distinct.size(), 20u) << "sampling should spread over the vocabulary";
  expect_baseline(*e);
}

TEST(EngineBatching, ChoicesForkThePromptAndAreReproducible) {
  GenerateRequest r;
  for (int i = 0; i < 37; ++i) r.prompt_ids.push_back(1 + (i * 5) % (kVocab - 1));  // partial last page
  r.params.n = 4;
  r.params.temperature = 1.0f;
  r.params.seed = 99;
  r.params.max_tokens = 20;
  r.params.ignore_eos = true;
  auto model = std::make_unique<FakeModel>(kVocab, 64);
  FakeModel* m = model.get();
  EngineConfig c;
  c.prefix_hash_seed = 5;
  auto e = Engine::create(std::move(model), std::make_unique<FakeTokenizer>(kVocab), c);
  auto a = run_all(*e, {r})[0];
  EXPECT_GE(m->copies(), 1) << "choices should fork the partial prompt page";
  ASSERT_EQ(a.size(), 4u);
  std::set<std::vector<int32_t>> distinct;
  for (auto& ch : a) {
    EXPECT_EQ(ch.tokens.size(), 20u);
    EXPECT_EQ(ch.finish, FinishReason::kLength);
    distinct.insert(ch.tokens);
  }
  EXPECT_EQ(distinct.size(), 4u) << "choices draw from different RNG streams";
  // Same request next to other traffic: same choices.
  auto others = mixed_requests(10, 4, true);
  others.insert(others.begin() + 3, r);
  auto b = run_all(*e, others);
  EXPECT_EQ(b[3], a);
  expect_baseline(*e);
}

TEST(EngineBatching, StopStringAcrossTokensIsCut) {
  GenerateRequest r;
  r.prompt_ids = {5, 6, 7, 8, 9};
  r.params.max_tokens = 40;
  r.params.temperature = 0.0f;
  r.params.ignore_eos = true;
  // ASCII pieces only, so text offsets follow the token pieces exactly.
  for (int32_t t = 1; t < kVocab; ++t) {
    const int k = (t - 1) % 16;
    if (k == 9 || k == 10 || k == 14) r.params.logit_bias.push_back({t, -100.0f});
  }
  auto e = make(64, 64, 8);
  auto full = run_all(*e, {r})[0][0];
  FakeTokenizer tok(kVocab);
  // A stop string made of the last byte of one token and the first of the next, whose first
  // occurrence is exactly there.
  std::string text, stop;
  size_t cut = std::string::npos;
  for (size_t i = 0; i + 1 < full.tokens.size() && stop.empty(); ++i) {
    text += tok.token_bytes(full.tokens[i]);
    const std::string next = tok.token_bytes(full.tokens[i + 1]);
    if (text.empty() || next.empty()) continue;
    const std::string cand = text.substr(text.size() - 1) + next.substr(0, 1);
    if (full.text.find(cand) == text.size() - 1) stop = cand, cut = text.size() - 1;
  }
  ASSERT_FALSE(stop.empty()) << full.text;
  r.params.stop = {stop, "never-there"};
  auto got = run_all(*e, {r})[0][0];
  EXPECT_EQ(got.finish, FinishReason::kStop);
  EXPECT_EQ(got.text, full.text.substr(0, cut));
  EXPECT_LT(got.tokens.size(), full.tokens.size());
  expect_baseline(*e);
}

TEST(EngineBatching, StopTokenIdsMinTokensAndLogprobs) {
  GenerateRequest r;
  r.prompt_ids = {3, 1, 4, 1, 5};
  r.params.max_tokens = 12;
  r.params.temperature = 0.0f;
  r.params.ignore_eos = true;
  r.params.logprobs = 3;
  auto e = make(64, 64, 8);
  std::vector<std::shared_ptr<RequestHandle>> hs{e->submit(r)};
  std::vector<TokenOutput> outs;
  TokenEvent ev;
  while (!hs[0]->done())
    if (hs[0]->next(&ev, std::chrono::milliseconds(100)))
      for (auto& t : ev.tokens) outs.push_back(t);
  ASSERT_EQ(outs.size(), 12u);
  for (auto& t : outs) {
    ASSERT_EQ(t.top.size(), 3u);
    EXPECT_EQ(t.top[0].token, t.token) << "greedy picks the most likely token";
    EXPECT_LE(t.logprob, 0.0f);
    EXPECT_GE(t.top[0].logprob, t.top[1].logprob);
    EXPECT_GE(t.top[1].logprob, t.top[2].logprob);
  }
  // The third greedy token as a stop token id: the output ends with it (its text excluded).
  const int32_t stop_tok = outs[2].token;
  size_t first = 0;
  while (outs[first].token != stop_tok) ++first;
  r.params.stop_token_ids = {stop_tok};
  auto got = run_all(*e, {r})[0][0];
  EXPECT_EQ(got.finish, FinishReason::kStop);
  EXPECT_EQ(got.tokens.size(), first + 1);
  EXPECT_EQ(got.tokens.back(), stop_tok);
  // min_tokens beyond it: the stop token is masked until then, so the output is longer.
  r.params.min_tokens = static_cast<int32_t>(first) + 3;
  auto longer = run_all(*e, {r})[0][0];
  EXPECT_GE(longer.tokens.size(), first + 3);
  for (size_t i = 0; i + 1 < static_cast<size_t>(r.params.min_tokens) && i < longer.tokens.size(); ++i)
    EXPECT_NE(longer.tokens[i], stop_tok) << i;
  expect_baseline(*e);
}

TEST(EngineBatching, AbortsAtAnyPhaseLeaveNothingBehind) {
  auto e = make(48, 32, 16, /*sleep_us=*/200);
  std::mt19937_64 rng(7);
  auto reqs = mixed_requests(200, 5, true);
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].params.n = 1 + static_cast<int32_t>(rng() % 3);
    hs.push_back(e->submit(reqs[i]));
    if (rng() % 3 == 0) hs[rng() % hs.size()]->abort();
    if (rng() % 10 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
  }
  int aborted = 0;
  for (size_t i = 0; i < hs.size(); ++i) {
    auto out = collect(*hs[i], reqs[i].params.n);
    for (auto& c : out) {
      EXPECT_NE(c.finish, FinishReason::kNone);
      aborted += c.finish == FinishReason::kAbort;
    }
  }
  EXPECT_GT(aborted, 0);
  EXPECT_GT(e->stats().finished_length + e->stats().finished_stop, 0);
  expect_baseline(*e);
  // A follow-up request still works.
  auto again = run_all(*e, {reqs[1]});
  EXPECT_NE(again[0][0].finish, FinishReason::kNone);
}

TEST(EngineBatching, RejectsWhatCanNeverRun) {
  auto e = make(8, 64, 4, 0, /*max_queued=*/2);
  GenerateRequest r;
  r.prompt_ids = {1, 2, 3};
  r.params.max_tokens = 200;  // 13 pages > 8
  try {
    e->submit(r);
    FAIL() << "needs more KV than the pool";
  } catch (const Error& err) {
    EXPECT_EQ(err.kind(), ErrorKind::kInvalidInput);
  }
  r.params.max_tokens = 4;
  r.prompt_ids = {};
  EXPECT_THROW(e->submit(r), Error);
  r.prompt_ids = {kVocab};
  EXPECT_THROW(e->submit(r), Error);
  r.prompt_ids = std::vector<int32_t>(4096, 1);
  EXPECT_THROW(e->submit(r), Error);
  r.prompt_ids = {1};
  r.params.temperature = -1.0f;
  EXPECT_THROW(e->submit(r), Error);
  expect_baseline(*e);
}

TEST(EngineBatching, MaxTokensUpToTheContextLengthAreAllProduced) {
  // prompt + max_tokens == max_model_len is accepted, so all max_tokens must come out (the
  // in-flight surplus token must not count against the context).
  EngineConfig c;
  c.max_batch_tokens = 64;
  c.max_running = 4;
  c.max_model_len = 40;
  c.prefix_hash_seed = 1234;
  auto e = Engine::create(std::make_unique<FakeModel>(kVocab, 64, 4096), std::make_unique<FakeTokenizer>(kVocab), c);
  GenerateRequest r;
  r.prompt_ids = std::vector<int32_t>(8, 3);
  r.params.temperature = 0.0f;
  r.params.ignore_eos = true;
  r.params.max_tokens = 32;
  auto h = e->submit(r);
  RequestOut out = collect(*h, 1);
  EXPECT_EQ(out[0].tokens.size(), 32u);
  EXPECT_EQ(out[0].completion_tokens, 32);
  EXPECT_EQ(out[0].finish, FinishReason::kLength);
  r.params.max_tokens = 33;
  EXPECT_THROW(e->submit(r), Error);
  expect_baseline(*e);
}

TEST(EngineBatching, QueueLimitRefusesWithResourceError) {
  auto e = make(64, 16, 1, /*sleep_us=*/20000, /*max_queued=*/2);
  GenerateRequest r;
  r.prompt_ids = {1, 2, 3};
  r.params.max_tokens = 20;
  r.params.ignore_eos = true;
  std::vector<std::shared_ptr<RequestHandle>> hs;
  int refused = 0;
  for (int i = 0; i < 10; ++i) {
    try {
      hs.push_back(e->submit(r));
    } catch (const Error& err) {
      EXPECT_EQ(err.kind(), ErrorKind::kResource);
      ++refused;
    }
  }
  EXPECT_GE(refused, 6);
  for (auto& h : hs) collect(*h, 1);
  expect_baseline(*e);
}

TEST(EngineBatching, ShutdownDrainFinishesInFlight) {
  auto e = make(64, 64, 8, 500);
  auto reqs = mixed_requests(6, 9, false);
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (auto& r : reqs) hs.push_back(e->submit(r));
  e->shutdown(/*drain=*/true);
  for (size_t i = 0; i < hs.size(); ++i) {
    auto out = collect(*hs[i], 1);
    EXPECT_TRUE(out[0].finish == FinishReason::kStop || out[0].finish == FinishReason::kLength);
  }
  EXPECT_THROW(e->submit(reqs[0]), Error);
}

TEST(EngineBatching, IdsPastTheTokenizerVocabularyHaveNoText) {
  // A model's padded vocabulary rows (Qwen2: 152064 logits, 151646 tokenizer ids) may be sampled:
  // they are tokens of the output, with no text, never an error.
  constexpr int32_t kTokVocab = kVocab / 2;
  EngineConfig c;
  c.max_batch_tokens = 64;
  c.max_running = 4;
  c.prefix_hash_seed = 1234;
  auto e = Engine::create(std::make_unique<FakeModel>(kVocab, 64, 4096), std::make_unique<FakeTokenizer>(kTokVocab), c);
  GenerateRequest r;
  r.prompt_ids = {1, 2, 3, 4, 5};
  r.params.temperature = 0.0f;
  r.params.ignore_eos = true;
  r.params.max_tokens = 48;
  r.params.logprobs = 3;
  auto h = e->submit(r);
  RequestOut out = collect(*h, 1);
  ASSERT_EQ(out[0].finish, FinishReason::kLength);
  ASSERT_EQ(out[0].tokens.size(), 48u);
  std::vector<int32_t> with_text;
  for (int32_t t : out[0].tokens)
    if (t < kTokVocab) with_text.push_back(t);
  EXPECT_LT(with_text.size(), out[0].tokens.size()) << "the fake model never sampled a padded id; pick another prompt";
  EXPECT_EQ(out[0].text, FakeTokenizer(kTokVocab).decode(with_text, true));
  expect_baseline(*e);
}

}  // namespace
}  // namespace nanoflow
