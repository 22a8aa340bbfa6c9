// The Executor on one GPU (DESIGN.md §3-4). launch() runs on the engine thread and only enqueues:
//   1. slot drops/registrations (host table), KV page copies (async device copies);
//   2. the plan, the deferred-token pairs and the per-row sampling parameters packed into one of
//      two pinned staging buffers and sent with ONE cudaMemcpyAsync into the model's fixed plan
//      buffer (a staging buffer is reused only after its previous copy has completed, by event);
//   3. the forward (the pipeline schedule: the sequential one on the model's stream, any other
//      through engine/schedule_runner.h on the model's lanes; the deferred tokens of this
//      plan are gathered on the device from the previous iteration's sampled ids), GPU sampling,
//      and an async copy of the sampled ids/logprobs into pinned host memory, bracketed by timing
//      events.
//
// CUDA graphs (options.cuda_graphs): a decode-only iteration (every sequence one query token) is
// padded to its sequence bucket (decode_graph_seq_bucket: 1, 2, 4, ..., 128, then steps of 64) and
// its KV bucket, and the model runs it through that bucket's graph (captured lazily: the bucket's
// first iteration runs eagerly, the second captures; nothing at start-up). The previous samples are
// copied into the model's fixed graph input first; sampling stays outside the graph (it runs on the
// real rows only, into the ring slot as before), so logprobs and host sampling work unchanged.
// Prefill and mixed iterations launch their kernels eagerly (~15 launches a layer).
// wait() blocks on the oldest iteration's event only; the engine calls it after launching the next
// iteration, so the GPU always has the next iteration queued while the host post-processes.
//
// Rows that need what the GPU sampler lacks (logit_bias, repetition/frequency/presence penalties,
// min_tokens EOS masking, more than 20 logprobs) make that iteration synchronous: the logits come
// to the host and the CPU sampler (engine/sampler.h) draws, so semantics never change.
//
// With a nano-batch schedule, the iterations it runs (PipelineSchedule::iterations: mixed ones by
// default, decode-only ones, or all) are cut into its nano-batches (CudaPlanStaging::split) and run
// eagerly by the schedule runner (schedules are not captured as graphs yet), unless a nano-batch
// comes out empty; the others run the sequential forward (decode-only ones through their bucket's
// graph when cuda_graphs is on).
#pragma once
#if defined(NANOFLOW_HAVE_CUDA)
#include <cuda_runtime.h>

#include <array>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "engine/executor.h"
#include "engine/pipeline_schedule.h"
#include "engine/schedule_runner.h"
#include "model/cuda_model.h"

namespace nanoflow::engine {

struct CudaExecutorOptions {
  bool cuda_graphs = true;   // decode-only iterations through CUDA graphs (see above)
};

struct CudaExecutorStats {
  int64_t iterations = 0;
  int64_t graph_replays = 0;            // iterations whose forward replayed a CUDA graph
  int64_t eager_iterations = 0;         // iterations whose forward launched kernels one by one
  int64_t host_sampled_iterations = 0;  // iterations that fell back to the CPU sampler
  int64_t scheduled_iterations = 0;     // eager iterations run by a nano-batch schedule
  double gpu_ms = 0;                    // sum of per-iteration GPU time (events)
};

class CudaExecutor final : public Executor {
 public:
  // The model is borrowed and must outlive the executor. Throws Error(kInvalidInput) when the
  // schedule is invalid or not one this executor runs.
  CudaExecutor(CudaModel& model, const PipelineSchedule& schedule, const CudaExecutorOptions& options = {});
  ~CudaExecutor() override;

  void launch(StepInput step) override;
  StepOutput wait() override;
  int64_t num_kv_pages() const override { return model_.num_kv_pages(); }
  int32_t vocab_size() const override { return static_cast<int32_t>(model_.config().vocab_size); }

  CudaExecutorStats stats() const { return stats_; }
  // The schedule runner's profile (NANOFLOW_OP_PROFILE; JSON text), empty for the sequential one.
  std::string schedule_profile_report() { return runner_ != nullptr ? runner_->profile_report() : std::string(); }

 private:
  struct Slot {
    SlotRegistration reg;           // outputs: every token known on the host so far
    int64_t launched = 0;           // samples launched (output index of the next draw)
  };
  struct InFlight {
    int64_t iteration = 0;
    int k = 0;                      // ring index: staging, pinned outputs, device samples
    int32_t rows = 0;
    int32_t num_logprobs = 0;
    std::vector<uint64_t> row_slots;
    std::vector<int32_t> row_logprobs;  // requested per row
    bool host_sampled = false;
    bool ran = false;               // a forward was enqueued (events recorded)
    bool absorbed = false;          // outputs already appended to slot histories
    StepOutput out;                 // filled at launch for host-sampled iterations
    std::string error;
  };
  static constexpr int kRing = 3;  // the engine keeps at most 2 iterations in flight

  bool needs_host_sampling(const Slot& s) const;
  void absorb(InFlight& f);
  void sample_on_host(InFlight& f, const CudaPlanShape& sh);

  CudaModel& model_;
  PipelineSchedule schedule_;
  std::unique_ptr<ScheduleRunner> runner_;  // non-sequential schedules only
  CudaExecutorOptions opt_;
  int32_t graph_seq_cap_ = 0;       // largest sequence bucket: min(max_seqs, max_tokens, max_sampled)
  int32_t vocab_ = 0;
  std::unordered_map<uint64_t, Slot> slots_;
  std::array<std::unique_ptr<CudaPlanStaging>, kRing> staging_;
  std::array<cudaEvent_t, kRing> uploaded_{};   // staging k may be rewritten once this fired
  std::array<cudaEvent_t, kRing> start_{}, done_{};
  // Device: sampled ids [kRing][max_sampled] i32, logprobs [kRing][max_sampled] f32,
  // top ids/logprobs [kRing][max_sampled][20].
  int32_t* d_sampled_ = nullptr;
  float* d_logprob_ = nullptr;
  int32_t* d_top_ids_ = nullptr;
  float* d_top_lp_ = nullptr;
  // Pinned host mirrors of the same.
  int32_t* h_sampled_ = nullptr;
  float* h_logprob_ = nullptr;
  int32_t* h_top_ids_ = nullptr;
  float* h_top_lp_ = nullptr;
  std::vector<float> host_logits_;  // [rows, vocab] for host-sampled iterations
  std::deque<InFlight> in_flight_;
  int64_t launches_ = 0;
  bool have_prev_ = false;          // the previous launch produced device samples
  int prev_k_ = 0;
  int32_t prev_rows_ = 0;
  CudaExecutorStats stats_;
};

}  // namespace nanoflow::engine
#endif  // NANOFLOW_HAVE_CUDA
