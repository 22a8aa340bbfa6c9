// Engine-side state of one generation stream (one choice of a request). A request with n choices
// owns n Sequences; choice 0 prefills the prompt and the others fork its pages (copy-on-write).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nanoflow/engine.h"
#include "tokenizer/tokenizer.h"

namespace nanoflow::engine {

using SeqId = uint64_t;

// Ordered by time: a sequence only moves forward, except preemption (kRunning -> kWaiting).
enum class SeqStatus : uint8_t {
  kWaitingFork,  // choice > 0 before its first token: waits for choice 0's prompt
  kWaiting,      // in the waiting queue (new, or preempted: recompute from its tokens)
  kRunning,      // holds KV pages; scheduled every iteration
  kFinished,     // done; pages released, final event sent
};

// Stop-string matching and text streaming of one choice. Text is held back while it could still
// be the start of a stop string; a stop string found is cut off with everything after it.
struct TextState {
  std::unique_ptr<IncrementalDetokenizer> detok;
  std::string text;          // generated text so far (may extend past what was emitted)
  size_t emitted = 0;        // bytes of `text` already sent
  size_t max_stop_len = 0;   // longest stop string
};

struct RequestState;  // engine_core.cc: the owning request (handle, params, counters)

// What the sampler of every choice of a request needs (shared by the choices).
struct SamplingSetup {
  SamplingParams params;
  uint64_t seed = 0;             // params.seed, or random per request
  std::vector<int32_t> eos_ids;  // EOS ids (unless ignore_eos) + stop_token_ids
};

struct Sequence {
  SeqId id = 0;
  RequestState* request = nullptr;
  int32_t choice = 0;
  SeqStatus status = SeqStatus::kWaiting;
  std::shared_ptr<const SamplingSetup> sampling;
  std::vector<Sequence*> children;  // choice 0 only: the other choices (kWaitingFork until forked)

  // tokens = prompt + outputs known on the host. Outputs sampled by an iteration still in flight
  // are not here yet: `pending` counts them (0 or 1).
  std::vector<int32_t> tokens;
  int32_t prompt_len = 0;
  int32_t pending = 0;
  int32_t pending_sample = -1;  // sample index of that output in the last launched iteration
  // Positions [0, scheduled) have their KV computed or being computed by a launched iteration.
  int32_t scheduled = 0;
  // Bumped at every preemption: results of iterations planned before it must not commit KV.
  int32_t epoch = 0;
  int64_t admitted_order = 0;  // for picking preemption victims (latest admitted first)
  int32_t cached_tokens = 0;   // prompt tokens the prefix cache served at first admission
  bool first_admission_done = false;
  bool children_sampled = false;  // choice 0: the other choices' first tokens were scheduled

  TextState text;
  int32_t outputs() const { return static_cast<int32_t>(tokens.size()) - prompt_len; }
  // Tokens the sequence holds once in-flight outputs land.
  int32_t total_len() const { return static_cast<int32_t>(tokens.size()) + pending; }
  int32_t remaining_input() const { return total_len() - scheduled; }
};

}  // namespace nanoflow::engine
