// Scheduler + BlockManager driven directly (no threads, no model): random arrivals, n > 1
// choices, finishes and aborts at any phase over thousands of iterations. After every iteration
// the plan is valid, within the token budget, the pool and the scheduler pass their integrity
// checks; at the end every page is back. Results are applied one iteration late, as the engine
// does (the plan of i+1 is built before the samples of i are read).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>

#include "engine/scheduler.h"

namespace nanoflow::engine {
namespace {

struct World {
  std::map<SeqId, std::unique_ptr<Sequence>> seqs;
  std::vector<std::shared_ptr<SamplingSetup>> setups;
};

void run(uint64_t seed, int64_t pages, int32_t budget, int32_t max_running, int steps) {
  std::mt19937_64 rng(seed);
  kv::BlockManager kv({pages, true, seed});
  Scheduler sched({budget, max_running}, kv);
  World w;
  SeqId next = 1;
  int64_t sampled = 0, finished = 0, aborted = 0, forks = 0;
  std::deque<ScheduledStep> in_flight;
  std::vector<int32_t> shared(40);
  for (auto& t : shared) t = static_cast<int32_t>(rng() % 1000);

  auto finish = [&](Sequence* s) {
    sched.remove(s);
    ++finished;
  };
  auto apply_result = [&](const ScheduledStep& st) {
    for (const auto& rec : st.seqs) {
      auto it = w.seqs.find(rec.id);
      if (it == w.seqs.end()) continue;
      Sequence& s = *it->second;
      if (s.status == SeqStatus::kFinished) continue;
      if (rec.kv_end > rec.kv_begin && rec.epoch == s.epoch && kv.has(s.id)) {
        ASSERT_EQ(kv.committed_tokens(s.id), rec.kv_begin);
        kv.apply(kv::CommitOp{s.id, std::span(s.tokens).subspan(static_cast<size_t>(rec.kv_begin),
                                                                static_cast<size_t>(rec.kv_end - rec.kv_begin))});
      }
      if (rec.sample_index < 0) continue;
      // 1 or 2: the plan of the next iteration may already have scheduled it again.
      ASSERT_GE(s.pending, 1);
      s.pending -= 1;
      ++sampled;
      if (s.status == SeqStatus::kWaitingFork) {
        sched.fork(w.seqs.at(s.id - static_cast<SeqId>(s.choice)).get(), rec.epoch, &s);
        ++forks;
      }
      s.tokens.push_back(static_cast<int32_t>((s.tokens.size() * 31 + s.id) % 1000));
      if (s.outputs() >= s.sampling->params.max_tokens) finish(&s);
    }
  };

  for (int step = 0; step < steps; ++step) {
    // Arrivals.
    const int arrivals = static_cast<int>(rng() % 3);
    for (int a = 0; a < arrivals && w.seqs.size() < 400; ++a) {
      auto setup = std::make_shared<SamplingSetup>();
      setup->params.max_tokens = 1 + static_cast<int32_t>(rng() % 30);
      setup->params.n = rng() % 5 == 0 ? 2 + static_cast<int32_t>(rng() % 2) : 1;
      const int len = 1 + static_cast<int>(rng() % 50);
      std::vector<int32_t> prompt;
      if (rng() % 2) prompt.assign(shared.begin(), shared.begin() + std::min(len, 40));
      while (static_cast<int>(prompt.size()) < len) prompt.push_back(static_cast<int32_t>(rng() % 1000));
      Sequence* leader = nullptr;
      for (int32_t c = 0; c < setup->params.n; ++c) {
        auto s = std::make_unique<Sequence>();
        s->id = next++;
        s->choice = c;
        s->sampling = setup;
        s->tokens = prompt;
        s->prompt_len = len;
        s->status = c == 0 ? SeqStatus::kWaiting : SeqStatus::kWaitingFork;
        if (c == 0) leader = s.get();
        else leader->children.push_back(s.get());
        Sequence* raw = s.get();
        w.seqs[raw->id] = std::move(s);
        if (c == 0) sched.enqueue(raw);
      }
    }
    // Aborts at any phase.
    if (!w.seqs.empty() && rng() % 4 == 0) {
      auto it = w.seqs.begin();
      std::advance(it, static_cast<long>(rng() % w.seqs.size()));
      if (it->second->status != SeqStatus::kFinished) {
        sched.remove(it->second.get());
        ++aborted;
      }
    }
    ScheduledStep st = sched.schedule(step + 1);
    const BatchPlan& plan = st.input.plan;
    plan.validate(pages);
    ASSERT_LE(plan.num_tokens(), budget);
    ASSERT_EQ(st.input.sample_slots.size(), plan.sample_rows.size());
    kv.check_integrity();
    sched.check_integrity();
    // Results of the previous iteration only now (asynchronous scheduling).
    if (!in_flight.empty()) {
      apply_result(in_flight.front());
      in_flight.pop_front();
    }
    if (!st.empty()) in_flight.push_back(std::move(st));
    // Forget finished sequences no iteration in flight refers to.
    for (auto it = w.seqs.begin(); it != w.seqs.end();) {
      bool referenced = false;
      for (auto& f : in_flight)
        for (auto& r : f.seqs) referenced |= r.id == it->first;
      const Sequence& s = *it->second;
      bool family_done = s.status == SeqStatus::kFinished;
      if (s.choice == 0)
        for (auto* c : s.children) family_done &= c->status == SeqStatus::kFinished;
      if (family_done && !referenced && s.choice == 0) {
        for (auto* c : s.children) w.seqs.erase(c->id);
        it = w.seqs.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Drain: abort everything left, flush the pipeline.
  for (auto& [id, s] : w.seqs)
    if (s->status != SeqStatus::kFinished) sched.remove(s.get());
  while (!in_flight.empty()) {
    apply_result(in_flight.front());
    in_flight.pop_front();
  }
  kv.check_integrity();
  EXPECT_EQ(kv.stats().referenced, 0);
  EXPECT_EQ(kv.num_available(), pages) << "pages back to baseline";
  EXPECT_EQ(sched.num_running(), 0u);
  EXPECT_EQ(sched.num_waiting(), 0u);
  EXPECT_GT(sampled, steps / 2);
  EXPECT_GT(finished, 50);
  EXPECT_GT(aborted, 10);
  EXPECT_GT(forks, 0);
  EXPECT_GT(kv.stats().prefix_hits, 0) << "shared prompts should hit the prefix cache";
  if (pages < 40) EXPECT_GT(sched.stats().preemptions, 0);
}

TEST(EngineScheduler, RandomTrafficTinyPool) { run(1, 24, 64, 16, 4000); }
TEST(EngineScheduler, RandomTrafficSmallBudget) { run(2, 64, 8, 32, 4000); }
TEST(EngineScheduler, RandomTrafficLargePool) { run(3, 2048, 256, 128, 3000); }

}  // namespace
}  // namespace nanoflow::engine
