// The Scheduler: every iteration fills a token budget (max_batch_tokens) with, in this order,
//   1. schedule_decodes        all running sequences that need one token (preempting the latest
//                              admitted ones by recompute when pages run out),
//   2. schedule_prefill_chunks running sequences in the middle of their prompt (chunked prefill),
//   3. admit_waiting           waiting sequences, first come first served, as long as the pages of
//                              their first chunk are free (after prefix-cache hits),
// and writes the BatchPlan of the iteration (DESIGN.md §4). Pure host code: the only state it
// changes outside itself is the BlockManager (through apply) and the Sequences it is handed.
#pragma once
#include <cstdint>
#include <deque>
#include <vector>

#include "engine/sequence.h"
#include "engine/step.h"
#include "kvcache/block_manager.h"

namespace nanoflow::engine {

struct SchedulerConfig {
  int32_t max_batch_tokens = 512;  // tokens per iteration
  int32_t max_running = 64;        // sequences holding KV pages
};

// What the engine must remember about a sequence's part in a launched iteration.
struct ScheduledSeq {
  SeqId id = 0;
  int32_t epoch = 0;         // the sequence's epoch when planned (preemption invalidates)
  int32_t kv_begin = 0;      // positions whose KV this iteration writes: [kv_begin, kv_end)
  int32_t kv_end = 0;
  int32_t sample_index = -1; // index into StepOutput::samples, -1 when nothing is sampled
};

struct ScheduledStep {
  StepInput input;
  std::vector<ScheduledSeq> seqs;
  bool empty() const {
    return input.plan.num_tokens() == 0 && input.copies.empty() && input.drops.empty();
  }
};

struct SchedulerStats {
  int64_t preemptions = 0;
  int64_t fork_fallbacks = 0;  // choices that could not fork and recompute instead
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, kv::BlockManager& kv);

  // A new sequence at the back of the waiting queue (status kWaiting).
  void enqueue(Sequence* s);
  // Takes a sequence out (finished or aborted): releases its pages, forgets its sampler slot.
  void remove(Sequence* s);
  // Choice `child` of a request whose choice 0 (`parent`) has computed the prompt: shares its
  // pages (copy-on-write of the partial one, performed before the next forward). When no page is
  // free the child waits and recomputes instead. `parent_epoch`: the epoch in which parent's
  // prompt KV was planned (a preempted parent cannot be forked).
  void fork(Sequence* parent, int32_t parent_epoch, Sequence* child);

  ScheduledStep schedule(int64_t iteration);

  size_t num_running() const { return running_.size(); }
  size_t num_waiting() const { return waiting_.size(); }
  const SchedulerStats& stats() const { return stats_; }
  // Every running sequence has KV with room for what was scheduled; waiting ones have none.
  void check_integrity() const;

 private:
  struct Builder {
    ScheduledStep step;
    int32_t budget = 0;
  };
  void schedule_decodes(Builder& b);
  void schedule_prefill_chunks(Builder& b);
  void admit_waiting(Builder& b);
  // Appends tokens [s.scheduled, s.scheduled + n) of `s` to the plan (pages must be there).
  void add_to_plan(Builder& b, Sequence& s, int32_t n);
  void add_first_samples_of_children(Builder& b, Sequence& leader, int32_t row);
  // Frees pages of the latest admitted running sequence; returns it.
  Sequence* preempt_latest(Builder& b);
  SlotRegistration registration(const Sequence& s) const;
  bool grow(Sequence& s, int32_t total_tokens);

  SchedulerConfig config_;
  kv::BlockManager& kv_;
  std::deque<Sequence*> waiting_;
  std::vector<Sequence*> running_;   // in admission order
  std::vector<uint64_t> pending_drops_;
  std::vector<kv::PageCopy> pending_copies_;
  int64_t admissions_ = 0;
  SchedulerStats stats_;
};

}  // namespace nanoflow::engine
