// What the engine thread hands the executor for one iteration, and what comes back. Plain data:
// nothing here points at a Request or a Sequence (DESIGN.md §4).
//
// Asynchronous scheduling: the plan of iteration i+1 is built before the sampled ids of iteration
// i are known on the host. A decode whose input token is such an id names it in `deferred`; the
// executor fills it in from iteration i's samples before the forward (on the GPU this is a
// device-side gather; here, on the executor's thread).
#pragma once
#include <cstdint>
#include <vector>

#include "kvcache/block_manager.h"
#include "model/batch_plan.h"
#include "nanoflow/engine.h"

namespace nanoflow::engine {

// Sampling state lives with the executor (it must see the tokens of iterations the host has not
// read yet, for penalties). A slot is one sequence's sampler.
struct SlotRegistration {
  uint64_t slot = 0;
  SamplingParams params;          // stop strings unused here
  uint64_t seed = 0;              // params.seed or a per-request random one
  int32_t choice = 0;             // RNG stream per (seed, choice, output index)
  std::vector<int32_t> prompt;    // for the repetition penalty
  std::vector<int32_t> outputs;   // outputs so far (non-empty on resume after preemption)
  std::vector<int32_t> eos_ids;   // EOS + stop_token_ids: masked while outputs < min_tokens
};

struct DeferredToken {
  int32_t token_index = 0;   // row of plan.token_ids to fill
  int32_t sample_index = 0;  // index into the previous iteration's samples
};

struct StepInput {
  int64_t iteration = 0;
  BatchPlan plan;                          // token_ids of deferred rows are placeholders (0)
  std::vector<DeferredToken> deferred;
  std::vector<uint64_t> drops;             // slots to forget (before registrations)
  std::vector<SlotRegistration> registrations;
  std::vector<kv::PageCopy> copies;        // copy-on-write of pages, before the forward
  std::vector<uint64_t> sample_slots;      // [plan.sample_rows.size()] sampler of each row
};

struct SampledToken {
  int32_t token = 0;
  float logprob = 0.0f;             // raw model log-probability of `token`
  std::vector<TokenLogprob> top;    // top `logprobs` alternatives (raw), best first
};

struct StepOutput {
  int64_t iteration = 0;
  std::vector<SampledToken> samples;  // one per sample row, in order
  std::string error;                  // non-empty: the iteration failed (every request in it errors)
  double forward_ms = 0.0;
};

}  // namespace nanoflow::engine
