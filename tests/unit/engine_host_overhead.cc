// Host time per iteration of the engine thread (planning + post-processing, not waiting on the
// executor) with 512 running sequences and a no-op executor. Prints the number that
// docs/perf/RESULTS.md "Engine" quotes; fails only if it is absurd (> 20 ms per iteration).
#include <gtest/gtest.h>

#include <cstdio>
#include <deque>
#include <mutex>

#include "engine/engine_core.h"
#include "engine_fakes.h"

namespace nanoflow {
namespace {

// Answers every sampled row with a fixed non-EOS token at once.
class NullExecutor final : public engine::Executor {
 public:
  NullExecutor(int32_t vocab, int64_t pages) : vocab_(vocab), pages_(pages) {}
  void launch(engine::StepInput step) override {
    engine::StepOutput out;
    out.iteration = step.iteration;
    out.samples.resize(step.plan.sample_rows.size());
    for (size_t i = 0; i < out.samples.size(); ++i) out.samples[i].token = 1 + static_cast<int32_t>(i % 3);
    std::lock_guard lk(mu_);
    q_.push_back(std::move(out));
  }
  engine::StepOutput wait() override {
    std::lock_guard lk(mu_);
    auto out = std::move(q_.front());
    q_.pop_front();
    return out;
  }
  int64_t num_kv_pages() const override { return pages_; }
  int32_t vocab_size() const override { return vocab_; }

 private:
  int32_t vocab_;
  int64_t pages_;
  std::mutex mu_;
  std::deque<engine::StepOutput> q_;
};

TEST(EngineHostOverhead, FiveHundredTwelveRunningSequences) {
  constexpr int kSeqs = 512, kPrompt = 32, kMax = 256;
  EngineConfig c;
  c.max_running = kSeqs;
  c.max_queued = kSeqs;
  c.max_batch_tokens = 4096;
  c.prefix_hash_seed = 3;
  const int64_t pages = int64_t{kSeqs} * ((kPrompt + kMax + 15) / 16);
  testing::FakeModel shape(64, pages);
  auto e = engine::make_engine(nullptr, std::make_unique<NullExecutor>(64, pages),
                               std::make_unique<testing::FakeTokenizer>(64), shape.config(), c);
  std::vector<std::shared_ptr<RequestHandle>> hs;
  for (int i = 0; i < kSeqs; ++i) {
    GenerateRequest r;
    for (int t = 0; t < kPrompt; ++t) r.prompt_ids.push_back(1 + (i * 7 + t) % 63);
    r.params.max_tokens = kMax;
    r.params.ignore_eos = true;
    r.params.temperature = 0.0f;
    hs.push_back(e->submit(r));
  }
  // Consume events as a server would.
  TokenEvent ev;
  size_t done = 0;
  int64_t events = 0;
  while (done < hs.size()) {
    done = 0;
    for (auto& h : hs) {
      while (h->next(&ev, std::chrono::milliseconds(0))) ++events;
      done += h->done();
    }
  }
  const auto s = e->stats();
  EXPECT_EQ(s.generation_tokens, int64_t{kSeqs} * kMax);
  EXPECT_GE(events, int64_t{kSeqs} * kMax);
  // Admission takes kSeqs * kPrompt / max_batch_tokens = 4 prefill iterations; the rest decode
  // all 512 sequences at once.
  ASSERT_GT(s.iterations, kMax);
  const double us = static_cast<double>(s.host_ns) / 1e3 / static_cast<double>(s.iterations);
  std::printf("engine host time per iteration, %d running sequences: %.1f us (mean over %lld iterations)\n", kSeqs, us,
              static_cast<long long>(s.iterations));
  RecordProperty("host_us_per_iteration_512", std::to_string(us));
  EXPECT_LT(us, 20000.0);
}

}  // namespace
}  // namespace nanoflow
