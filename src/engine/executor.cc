#include "engine/executor.h"

#include <chrono>

#include "core/error.h"

namespace nanoflow::engine {

ThreadedExecutor::ThreadedExecutor(Model& model) : model_(model) {
  thread_ = std::thread([this] { worker(); });
}

ThreadedExecutor::~ThreadedExecutor() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void ThreadedExecutor::launch(StepInput step) {
  {
    std::lock_guard lk(mu_);
    inbox_.push_back(std::move(step));
  }
  cv_.notify_all();
}

StepOutput ThreadedExecutor::wait() {
  std::unique_lock lk(mu_);
  cv_.wait(lk, [this] { return !outbox_.empty(); });
  StepOutput out = std::move(outbox_.front());
  outbox_.pop_front();
  return out;
}

void ThreadedExecutor::worker() {
  for (;;) {
    StepInput step;
    {
      std::unique_lock lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !inbox_.empty(); });
      if (inbox_.empty()) return;  // stop_ and nothing left
      step = std::move(inbox_.front());
      inbox_.pop_front();
    }
    StepOutput out;
    try {
      out = run(step);
    } catch (const std::exception& e) {
      out.iteration = step.iteration;
      out.error = e.what();
      prev_samples_.clear();
    }
    {
      std::lock_guard lk(mu_);
      outbox_.push_back(std::move(out));
    }
    cv_.notify_all();
  }
}

StepOutput ThreadedExecutor::run(StepInput& step) {
  const auto t0 = std::chrono::steady_clock::now();
  StepOutput out;
  out.iteration = step.iteration;
  for (uint64_t s : step.drops) slots_.erase(s);
  for (const auto& r : step.registrations) slots_.insert_or_assign(r.slot, SamplerSlot(r));
  BatchPlan& plan = step.plan;
  for (const auto& d : step.deferred) {
    NF_CHECK(d.sample_index >= 0 && static_cast<size_t>(d.sample_index) < prev_samples_.size())
        << "deferred token refers to sample " << d.sample_index << " of " << prev_samples_.size();
    NF_CHECK(d.token_index >= 0 && d.token_index < plan.num_tokens()) << "deferred token row " << d.token_index;
    plan.token_ids[static_cast<size_t>(d.token_index)] = prev_samples_[static_cast<size_t>(d.sample_index)];
  }
  for (const auto& c : step.copies) model_.copy_page(c.src, c.dst);
  prev_samples_.clear();
  if (plan.num_tokens() == 0) return out;
  plan.validate(model_.num_kv_pages());
  NF_CHECK_EQ(step.sample_slots.size(), plan.sample_rows.size()) << "sampler per sample row";
  const int32_t vocab = vocab_size();
  logits_.resize(plan.sample_rows.size() * static_cast<size_t>(vocab));
  model_.forward(plan, logits_.data());
  out.samples.reserve(plan.sample_rows.size());
  for (size_t i = 0; i < plan.sample_rows.size(); ++i) {
    auto it = slots_.find(step.sample_slots[i]);
    NF_CHECK(it != slots_.end()) << "no sampler slot " << step.sample_slots[i];
    out.samples.push_back(it->second.sample(&logits_[i * static_cast<size_t>(vocab)], vocab));
    prev_samples_.push_back(out.samples.back().token);
  }
  out.forward_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace nanoflow::engine
