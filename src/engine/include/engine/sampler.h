// CPU sampler: one logits row -> one token, following the sequence's SamplingParams.
//
// Order (as vLLM applies them): raw log-probs for logprobs; logit_bias; EOS/stop ids masked while
// fewer than min_tokens outputs; repetition penalty (prompt + outputs, HF rule: divide positive
// logits, multiply negative ones), frequency and presence penalties (outputs); then greedy argmax
// (temperature 0) or temperature -> top-k -> top-p -> min-p -> one draw.
//
// The draw's uniform number comes from a counter-based hash of (seed, choice, output index), so
// the same seed gives the same tokens whatever else shares the batch and across preemption.
#pragma once
#include <cstdint>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/step.h"

namespace nanoflow::engine {

class SamplerSlot {
 public:
  explicit SamplerSlot(const SlotRegistration& reg);
  // logits: [vocab] of this row (modified in place). Appends the chosen token to the history.
  SampledToken sample(float* logits, int32_t vocab);
  int32_t num_outputs() const { return static_cast<int32_t>(outputs_); }

 private:
  void apply_penalties(float* logits, int32_t vocab) const;
  int32_t draw(float* logits, int32_t vocab, double u);

  SamplingParams params_;
  uint64_t seed_;
  int32_t choice_;
  std::vector<int32_t> eos_ids_;
  std::unordered_map<int32_t, int32_t> output_counts_;  // token -> times generated
  std::unordered_set<int32_t> prompt_set_;              // distinct prompt tokens
  int64_t outputs_ = 0;
  std::vector<int32_t> scratch_idx_;  // [vocab] candidate order for top-k/top-p
};

// A uniform double in [0, 1) from (seed, choice, index); stateless, so batch-independent.
double sampler_uniform(uint64_t seed, int32_t choice, int64_t index);

// log_softmax of a row into `out` [vocab]; returns nothing, never fails.
void log_softmax(const float* logits, int32_t vocab, float* out);

}  // namespace nanoflow::engine
