// The Executor runs iterations in launch order: fill deferred tokens from the previous iteration's
// samples, apply slot drops/registrations and page copies, forward over the plan, sample.
// launch() returns at once; wait() blocks for the oldest launched iteration's output. The CPU
// executor does the work on its own thread, so the engine thread really plans iteration i+1
// while iteration i runs (DESIGN.md §4).
#pragma once
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "engine/sampler.h"
#include "engine/step.h"
#include "model/model.h"

namespace nanoflow::engine {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual void launch(StepInput step) = 0;
  virtual StepOutput wait() = 0;
  virtual int64_t num_kv_pages() const = 0;
  virtual int32_t vocab_size() const = 0;
};

// Runs a Model (any backend with a host-visible logits buffer) plus the CPU sampler on a worker
// thread. The Model is borrowed and must outlive the executor.
class ThreadedExecutor final : public Executor {
 public:
  explicit ThreadedExecutor(Model& model);
  ~ThreadedExecutor() override;
  void launch(StepInput step) override;
  StepOutput wait() override;
  int64_t num_kv_pages() const override { return model_.num_kv_pages(); }
  int32_t vocab_size() const override { return static_cast<int32_t>(model_.config().vocab_size); }

 private:
  void worker();
  StepOutput run(StepInput& step);

  Model& model_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<StepInput> inbox_;
  std::deque<StepOutput> outbox_;
  bool stop_ = false;
  // Worker-thread state:
  std::unordered_map<uint64_t, SamplerSlot> slots_;
  std::vector<int32_t> prev_samples_;  // token ids sampled by the previous iteration
  std::vector<float> logits_;          // [rows, vocab]
  std::thread thread_;
};

}  // namespace nanoflow::engine
