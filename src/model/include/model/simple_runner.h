// A minimal driver for a Model without the engine: a private free list of KV pages, sequences
// that own token lists, and a step() that turns "feed the next n tokens of sequence s" into a
// BatchPlan. For tests, `nanoflow generate` and the CPU model benchmark. The engine's Scheduler
// (with the kvcache BlockManager) is the real thing; this has no prefix sharing or preemption.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model/batch_plan.h"
#include "model/model.h"

namespace nanoflow {

class SimpleRunner {
 public:
  explicit SimpleRunner(Model& model);

  // Registers a sequence with its prompt; returns its id. Nothing is computed yet.
  int add_sequence(std::span<const int32_t> prompt);
  // Appends a (sampled) token; it is fed by a later step.
  void append_token(int seq, int32_t token);
  // Frees the sequence's pages.
  void release(int seq);

  int32_t num_tokens(int seq) const { return static_cast<int32_t>(seqs_.at(seq).tokens.size()); }
  int32_t num_computed(int seq) const { return seqs_.at(seq).computed; }
  int32_t pending(int seq) const { return num_tokens(seq) - num_computed(seq); }
  const std::vector<int32_t>& tokens(int seq) const { return seqs_.at(seq).tokens; }
  int64_t free_pages() const { return static_cast<int64_t>(free_.size()); }

  struct Work {
    int seq = 0;
    int32_t num_tokens = 0;  // next tokens to feed, 1..pending(seq)
    bool sample = true;      // return logits of the chunk's last token
    bool sample_all = false; // return logits of every token of the chunk (prompt logprobs, tests)
  };
  // Runs one forward over all work items (in the given order, one row block each). logits is
  // resized to [number of sampled rows, vocab], rows in work order. Throws Error(kResource) when pages run out.
  void step(std::span<const Work> work, std::vector<float>& logits);
  const BatchPlan& last_plan() const { return plan_; }

 private:
  struct Seq {
    std::vector<int32_t> tokens;
    std::vector<int32_t> pages;
    int32_t computed = 0;  // tokens whose K/V are in the cache
    bool live = false;
  };
  Model& model_;
  std::vector<Seq> seqs_;
  std::vector<int32_t> free_;
  BatchPlan plan_;
};

// Greedy decoding of one prompt: prefill in chunks of `chunk` tokens (0 = whole prompt), then
// n_new steps of argmax. Returns the generated ids. If `first_logits` is non-null it receives the
// logits after the prompt ([vocab]).
std::vector<int32_t> greedy_generate(Model& model, std::span<const int32_t> prompt, int n_new, int chunk = 0,
                                     std::vector<float>* first_logits = nullptr);

// Index of the largest value (lowest index on ties, like torch.argmax on CPU).
int32_t argmax(std::span<const float> row);

}  // namespace nanoflow
