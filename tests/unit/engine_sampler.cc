// CPU sampler: each knob against its definition (computed here independently), seeded
// reproducibility, and the text stream's stop-string / UTF-8 rules.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "engine/sampler.h"
#include "engine/text_output.h"

namespace nanoflow::engine {
namespace {

std::vector<float> random_logits(int32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> l(static_cast<size_t>(vocab));
  for (auto& x : l) x = d(rng);
  return l;
}

SlotRegistration reg(SamplingParams p, uint64_t seed = 1, std::vector<int32_t> prompt = {}, std::vector<int32_t> outputs = {}) {
  SlotRegistration r;
  r.params = p;
  r.seed = seed;
  r.prompt = std::move(prompt);
  r.outputs = std::move(outputs);
  r.eos_ids = {0};
  return r;
}

int32_t argmax(const std::vector<float>& l) {
  return static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
}

TEST(EngineSampler, GreedyIsArgmaxAndLogprobsAreNormalized) {
  auto l = random_logits(100, 1);
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = 5;
  SamplerSlot s(reg(p));
  auto copy = l;
  auto out = s.sample(copy.data(), 100);
  EXPECT_EQ(out.token, argmax(l));
  double z = 0;
  for (float x : l) z += std::exp(static_cast<double>(x));
  EXPECT_NEAR(out.logprob, l[static_cast<size_t>(out.token)] - std::log(z), 1e-4);
  ASSERT_EQ(out.top.size(), 5u);
  EXPECT_EQ(out.top[0].token, out.token);
  for (size_t i = 1; i < 5; ++i) EXPECT_LE(out.top[i].logprob, out.top[i - 1].logprob);
}

TEST(EngineSampler, SeedGivesSameStreamAndDifferentSeedsDiffer) {
  SamplingParams p;
  p.temperature = 1.0f;
  std::vector<int32_t> a, b, c;
  SamplerSlot sa(reg(p, 7)), sb(reg(p, 7)), sc(reg(p, 8));
  for (int i = 0; i < 50; ++i) {
    auto l = random_logits(50, static_cast<uint64_t>(100 + i));
    auto l2 = l, l3 = l;
    a.push_back(sa.sample(l.data(), 50).token);
    b.push_back(sb.sample(l2.data(), 50).token);
    c.push_back(sc.sample(l3.data(), 50).token);
  }
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Resuming with the outputs so far continues the same stream (preemption by recompute).
  SamplerSlot resumed(reg(p, 7, {}, std::vector<int32_t>(a.begin(), a.begin() + 20)));
  for (int i = 20; i < 50; ++i) {
    auto l = random_logits(50, static_cast<uint64_t>(100 + i));
    EXPECT_EQ(resumed.sample(l.data(), 50).token, a[static_cast<size_t>(i)]) << i;
  }
}

TEST(EngineSampler, TemperatureSamplingFollowsTheDistribution) {
  // Frequencies over many draws match softmax(l / T) (chi-square-ish bound on a small vocab).
  const std::vector<float> l = {1.0f, 0.0f, -1.0f, 0.5f};
  SamplingParams p;
  p.temperature = 0.7f;
  const int kDraws = 20000;
  std::vector<int> count(4, 0);
  for (int i = 0; i < kDraws; ++i) {
    SamplerSlot s(reg(p, static_cast<uint64_t>(i) * 977 + 3));
    auto c = l;
    ++count[static_cast<size_t>(s.sample(c.data(), 4).token)];
  }
  double z = 0;
  for (float x : l) z += std::exp(x / 0.7);
  for (int v = 0; v < 4; ++v) {
    const double expect = std::exp(l[static_cast<size_t>(v)] / 0.7) / z;
    EXPECT_NEAR(count[static_cast<size_t>(v)] / static_cast<double>(kDraws), expect, 0.015) << v;
  }
}

TEST(EngineSampler, TopKTopPMinPRestrictTheCandidates) {
  auto l = random_logits(200, 3);
  std::vector<int32_t> order(200);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) { return l[a] > l[b]; });
  for (int i = 0; i < 300; ++i) {
    SamplingParams p;
    p.temperature = 1.5f;
    p.top_k = 3;
    SamplerSlot s(reg(p, static_cast<uint64_t>(i)));
    auto c = l;
    const int32_t t = s.sample(c.data(), 200).token;
    EXPECT_TRUE(t == order[0] || t == order[1] || t == order[2]);
  }
  // top_p tiny: only the best token survives.
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 1e-6f;
  for (int i = 0; i < 50; ++i) {
    SamplerSlot s(reg(p, static_cast<uint64_t>(i)));
    auto c = l;
    EXPECT_EQ(s.sample(c.data(), 200).token, order[0]);
  }
  // min_p = 1: only tokens as likely as the best.
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  for (int i = 0; i < 50; ++i) {
    SamplerSlot s(reg(p, static_cast<uint64_t>(i)));
    auto c = l;
    EXPECT_EQ(s.sample(c.data(), 200).token, order[0]);
  }
}

TEST(EngineSampler, PenaltiesAndBiasFollowTheirDefinitions) {
  // logit_bias can force a token.
  auto l = random_logits(30, 4);
  SamplingParams p;
  p.temperature = 0.0f;
  p.logit_bias = {{17, 100.0f}};
  {
    SamplerSlot s(reg(p));
    auto c = l;
    EXPECT_EQ(s.sample(c.data(), 30).token, 17);
  }
  // Repetition penalty (HF): the best token was in the prompt and becomes worse than the second
  // when penalized enough.
  p.logit_bias.clear();
  const int32_t best = argmax(l);
  auto l2 = l;
  l2[static_cast<size_t>(best)] = -1e9f;
  const int32_t second = argmax(l2);
  p.repetition_penalty = 1e4f;
  {
    SamplerSlot s(reg(p, 1, {best}));
    auto c = l;
    const int32_t t = s.sample(c.data(), 30).token;
    if (l[static_cast<size_t>(best)] > 0) EXPECT_EQ(t, second);
  }
  // Frequency penalty: each repetition lowers the logit by the penalty.
  p.repetition_penalty = 1.0f;
  p.frequency_penalty = 2.0f;
  {
    std::vector<float> flat(5, 0.0f);
    flat[2] = 3.0f;  // best, generated twice before: 3 - 2*2 = -1 < 0
    SamplerSlot s(reg(p, 1, {}, {2, 2}));
    EXPECT_NE(s.sample(flat.data(), 5).token, 2);
  }
  // Presence penalty: once is enough.
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 2.0f;
  {
    std::vector<float> flat(5, 0.0f);
    flat[2] = 1.5f;
    SamplerSlot s(reg(p, 1, {}, {2}));
    EXPECT_NE(s.sample(flat.data(), 5).token, 2);
  }
  // min_tokens masks EOS (id 0 here) until reached.
  p.presence_penalty = 0.0f;
  p.min_tokens = 2;
  {
    SamplerSlot s(reg(p));
    std::vector<float> eos_best = {10.0f, 0.0f, 1.0f};
    auto c = eos_best;
    EXPECT_EQ(s.sample(c.data(), 3).token, 2);
    c = eos_best;
    EXPECT_EQ(s.sample(c.data(), 3).token, 2);
    c = eos_best;
    EXPECT_EQ(s.sample(c.data(), 3).token, 0);
  }
}

TEST(EngineTextOutput, StopStringSplitAcrossPiecesIsCut) {
  TextState t;
  std::vector<std::string> stops = {"STOP", "xyz"};
  t.max_stop_len = 4;
  bool stopped = false;
  std::string out;
  out += text_push(t, "hello S", stops, true, &stopped);
  EXPECT_FALSE(stopped);
  out += text_push(t, "T", stops, true, &stopped);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(out.find('S'), std::string::npos) << "text that may start a stop string is held back";
  out += text_push(t, "OP and more", stops, true, &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "hello ");
}

TEST(EngineTextOutput, EarliestStopWinsAndHeldTextIsReleased) {
  TextState t;
  std::vector<std::string> stops = {"bc", "abcd"};
  t.max_stop_len = 4;
  bool stopped = false;
  std::string out = text_push(t, "xxa", stops, true, &stopped);
  out += text_push(t, "bcd", stops, true, &stopped);
  EXPECT_TRUE(stopped);
  EXPECT_EQ(out, "xx");  // "abcd" starts before "bc"
  TextState u;
  u.max_stop_len = 4;
  out = text_push(u, "no stop here", stops, true, &stopped);
  out += text_finish(u);
  EXPECT_FALSE(stopped);
  EXPECT_EQ(out, "no stop here");
}

TEST(EngineTextOutput, NeverEmitsHalfACharacter) {
  TextState t;
  std::vector<std::string> stops = {"zz"};
  t.max_stop_len = 2;
  bool stopped = false;
  // "é" is 2 bytes; holding back 1 byte must not split it.
  std::string out = text_push(t, "a\xC3\xA9", stops, true, &stopped);
  EXPECT_EQ(out, "a");
  out += text_push(t, "b", stops, true, &stopped);
  EXPECT_EQ(out, "a\xC3\xA9");
  out += text_finish(t);
  EXPECT_EQ(out, "a\xC3\xA9" "b");
}

}  // namespace
}  // namespace nanoflow::engine
