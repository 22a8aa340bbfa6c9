#include "engine/scheduler.h"

#include <algorithm>

#include "core/error.h"

namespace nanoflow::engine {

static_assert(kv::kPageTokens == kPageSize, "KV page size of kvcache and model must agree");

Scheduler::Scheduler(const SchedulerConfig& config, kv::BlockManager& kv) : config_(config), kv_(kv) {
  NF_CHECK_INPUT(config.max_batch_tokens >= 1) << "max_batch_tokens = " << config.max_batch_tokens;
  NF_CHECK_INPUT(config.max_running >= 1) << "max_running = " << config.max_running;
}

void Scheduler::enqueue(Sequence* s) {
  s->status = SeqStatus::kWaiting;
  waiting_.push_back(s);
}

void Scheduler::remove(Sequence* s) {
  if (auto it = std::find(running_.begin(), running_.end(), s); it != running_.end()) running_.erase(it);
  if (auto it = std::find(waiting_.begin(), waiting_.end(), s); it != waiting_.end()) waiting_.erase(it);
  if (kv_.has(s->id)) kv_.apply(kv::ReleaseOp{s->id});
  pending_drops_.push_back(s->id);
  s->status = SeqStatus::kFinished;
}

void Scheduler::fork(Sequence* parent, int32_t parent_epoch, Sequence* child) {
  NF_CHECK(child->status == SeqStatus::kWaitingFork) << "fork of sequence " << child->id;
  // The parent may have finished in this same result (its pages stay until the engine reaps it).
  const bool parent_ok = parent->epoch == parent_epoch && kv_.has(parent->id) && kv_.committed_tokens(parent->id) == child->prompt_len;
  const bool need_page = child->prompt_len % kv::kPageTokens != 0;
  if (parent_ok && running_.size() < static_cast<size_t>(config_.max_running) &&
      kv_.num_available() >= (need_page ? 1 : 0)) {
    auto r = kv_.apply(kv::ForkOp{parent->id, child->id});
    pending_copies_.insert(pending_copies_.end(), r.copies.begin(), r.copies.end());
    child->scheduled = child->prompt_len;
    child->status = SeqStatus::kRunning;
    child->admitted_order = ++admissions_;
    child->first_admission_done = true;
    child->cached_tokens = parent->cached_tokens;
    running_.push_back(child);
    return;
  }
  // Recompute: it has its first token; the prefix cache will likely serve its prompt.
  ++stats_.fork_fallbacks;
  child->scheduled = 0;
  child->status = SeqStatus::kWaiting;
  pending_drops_.push_back(child->id);  // re-registered with its outputs when admitted
  waiting_.push_front(child);
}

SlotRegistration Scheduler::registration(const Sequence& s) const {
  SlotRegistration r;
  r.slot = s.id;
  r.params = s.sampling->params;
  r.params.stop.clear();
  r.seed = s.sampling->seed;
  r.choice = s.choice;
  r.prompt.assign(s.tokens.begin(), s.tokens.begin() + s.prompt_len);
  r.outputs.assign(s.tokens.begin() + s.prompt_len, s.tokens.end());
  r.eos_ids = s.sampling->eos_ids;
  return r;
}

bool Scheduler::grow(Sequence& s, int32_t total_tokens) {
  if (kv_.pages_for_grow(s.id, total_tokens) > kv_.num_available()) return false;
  kv_.apply(kv::GrowOp{s.id, total_tokens});
  return true;
}

ScheduledStep Scheduler::schedule(int64_t iteration) {
  Builder b;
  b.budget = config_.max_batch_tokens;
  b.step.input.iteration = iteration;
  b.step.input.drops = std::move(pending_drops_);
  pending_drops_.clear();
  b.step.input.copies = std::move(pending_copies_);
  pending_copies_.clear();
  b.step.input.plan.q_start.push_back(0);
  b.step.input.plan.page_start.push_back(0);
  schedule_decodes(b);
  schedule_prefill_chunks(b);
  admit_waiting(b);
  return std::move(b.step);
}

void Scheduler::schedule_decodes(Builder& b) {
  for (size_t i = 0; i < running_.size() && b.budget > 0; ++i) {
    Sequence& s = *running_[i];
    if (s.remaining_input() != 1) continue;
    // Its last output is already due: the next token would be surplus (max_tokens reached).
    if (s.outputs() + s.pending >= s.sampling->params.max_tokens) continue;
    bool preempted_self = false;
    while (!grow(s, s.total_len())) {
      Sequence* victim = preempt_latest(b);
      if (victim == &s) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) break;  // s was the latest: everything after it is gone too
    add_to_plan(b, s, 1);
  }
}

void Scheduler::schedule_prefill_chunks(Builder& b) {
  for (Sequence* sp : running_) {
    if (b.budget <= 0) return;
    Sequence& s = *sp;
    if (s.remaining_input() <= 1) continue;
    int32_t chunk = std::min(s.remaining_input(), b.budget);
    // As much as the free pages allow; no preemption for prompt work.
    const int64_t room = int64_t{kv_.capacity_tokens(s.id)} + kv_.num_available() * kv::kPageTokens - s.scheduled;
    chunk = static_cast<int32_t>(std::min<int64_t>(chunk, room));
    if (chunk <= 0) continue;
    NF_CHECK(grow(s, s.scheduled + chunk)) << "prefill growth of sequence " << s.id;
    add_to_plan(b, s, chunk);
  }
}

void Scheduler::admit_waiting(Builder& b) {
  while (!waiting_.empty() && b.budget > 0 && running_.size() < static_cast<size_t>(config_.max_running)) {
    Sequence& s = *waiting_.front();
    if (s.pending > 0) return;  // preempted while an output was in flight: wait for it
    const int32_t cached = kv_.cached_prefix_tokens(s.tokens);
    int32_t chunk = std::min(s.total_len() - cached, b.budget);
    while (chunk > 0 && kv_.pages_for_admit(s.tokens, cached + chunk) > kv_.num_available()) chunk /= 2;
    if (chunk <= 0) return;  // first come first served: nobody overtakes the head
    waiting_.pop_front();
    const auto r = kv_.apply(kv::AdmitOp{s.id, s.tokens, cached + chunk});
    NF_CHECK_EQ(r.cached_tokens, cached) << "prefix lookup of sequence " << s.id;
    if (!s.first_admission_done) {
      s.cached_tokens = std::min(r.cached_tokens, s.prompt_len);
      s.first_admission_done = true;
    }
    s.scheduled = r.cached_tokens;
    s.status = SeqStatus::kRunning;
    s.admitted_order = ++admissions_;
    running_.push_back(&s);
    b.step.input.registrations.push_back(registration(s));
    add_to_plan(b, s, chunk);
  }
}

Sequence* Scheduler::preempt_latest(Builder& b) {
  NF_CHECK(!running_.empty()) << "preemption with nothing running";
  Sequence* v = running_.back();
  running_.pop_back();
  kv_.apply(kv::ReleaseOp{v->id});
  b.step.input.drops.push_back(v->id);
  v->status = SeqStatus::kWaiting;
  v->scheduled = 0;
  ++v->epoch;
  waiting_.push_front(v);
  ++stats_.preemptions;
  return v;
}

void Scheduler::add_to_plan(Builder& b, Sequence& s, int32_t n) {
  BatchPlan& plan = b.step.input.plan;
  const int32_t begin = s.scheduled, end = s.scheduled + n;
  NF_CHECK(n >= 1 && end <= s.total_len()) << "sequence " << s.id << " chunk [" << begin << ", " << end << ")";
  for (int32_t pos = begin; pos < end; ++pos) {
    if (pos < static_cast<int32_t>(s.tokens.size())) {
      plan.token_ids.push_back(s.tokens[static_cast<size_t>(pos)]);
    } else {  // the output of the iteration in flight
      NF_CHECK(s.pending == 1 && s.pending_sample >= 0) << "sequence " << s.id << " position " << pos;
      b.step.input.deferred.push_back({plan.num_tokens(), s.pending_sample});
      plan.token_ids.push_back(0);
    }
    plan.positions.push_back(pos);
  }
  plan.q_start.push_back(plan.num_tokens());
  plan.kv_len.push_back(end);
  const auto& pages = kv_.page_table(s.id);
  const size_t npages = static_cast<size_t>(kv::BlockManager::pages_for_tokens(end));
  NF_CHECK_LE(npages, pages.size()) << "pages of sequence " << s.id;
  plan.page_ids.insert(plan.page_ids.end(), pages.begin(), pages.begin() + static_cast<long>(npages));
  plan.page_start.push_back(static_cast<int32_t>(plan.page_ids.size()));
  ScheduledSeq rec{s.id, s.epoch, begin, end, -1};
  s.scheduled = end;
  b.budget -= n;
  if (end == s.total_len()) {  // the last known token: sample the next one
    const int32_t row = plan.num_tokens() - 1;
    rec.sample_index = static_cast<int32_t>(plan.sample_rows.size());
    plan.sample_rows.push_back(row);
    b.step.input.sample_slots.push_back(s.id);
    const bool first_sample = s.outputs() == 0 && s.pending == 0;
    s.pending += 1;
    s.pending_sample = rec.sample_index;
    b.step.seqs.push_back(rec);
    if (first_sample && !s.children_sampled && !s.children.empty()) add_first_samples_of_children(b, s, row);
    return;
  }
  b.step.seqs.push_back(rec);
}

void Scheduler::add_first_samples_of_children(Builder& b, Sequence& leader, int32_t row) {
  // The other choices draw their first token from the same logits row (the prompt's last one);
  // they fork the leader's pages once this iteration's result is in.
  leader.children_sampled = true;
  BatchPlan& plan = b.step.input.plan;
  for (Sequence* c : leader.children) {
    if (c->status != SeqStatus::kWaitingFork) continue;
    b.step.input.registrations.push_back(registration(*c));
    const int32_t k = static_cast<int32_t>(plan.sample_rows.size());
    plan.sample_rows.push_back(row);
    b.step.input.sample_slots.push_back(c->id);
    c->pending = 1;
    c->pending_sample = k;
    b.step.seqs.push_back(ScheduledSeq{c->id, leader.epoch, 0, 0, k});  // fork checks the leader's epoch
  }
}

void Scheduler::check_integrity() const {
  for (const Sequence* s : running_) {
    NF_CHECK(s->status == SeqStatus::kRunning) << "running list holds sequence " << s->id;
    NF_CHECK(kv_.has(s->id)) << "running sequence " << s->id << " has no KV";
    NF_CHECK_LE(s->scheduled, kv_.capacity_tokens(s->id)) << "sequence " << s->id;
  }
  for (const Sequence* s : waiting_) {
    NF_CHECK(s->status == SeqStatus::kWaiting) << "waiting queue holds sequence " << s->id;
    NF_CHECK(!kv_.has(s->id)) << "waiting sequence " << s->id << " holds KV";
  }
  NF_CHECK_LE(running_.size(), static_cast<size_t>(config_.max_running)) << "running set";
}

}  // namespace nanoflow::engine
