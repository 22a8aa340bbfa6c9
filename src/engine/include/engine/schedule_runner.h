// Runs a pipeline schedule (engine/pipeline_schedule.h) over one iteration on the GPU: the model's
// prologue on its stream, then a fork to the schedule's lanes (the model's streams of
// options().lane_sm_counts, one per schedule stream), every node launched in the validated order
// on its lane after cross-lane waits for the nodes it depends on, and a join back to the model's
// stream (where the executor samples). Nodes of one lane run in launch order; a dependency on
// another lane becomes an event recorded after the producer and waited for before the consumer.
// Launch order is topological, so every wait names an event already recorded in this iteration.
//
// Profile (NANOFLOW_OP_PROFILE=N, as for the sequential forward's op profile): every Nth run whose
// nano-batches are all non-empty records timing events around each node on its lane (after its
// cross-lane waits) and around the whole fork..join; they are read at the next profiled run (long
// finished; with N = 1 each run waits for the previous one there, so use N >= 2 to keep the
// pipeline asynchronous) or at profile_report(). Node times overlap across lanes by design: the report gives,
// per (op, lane), GPU time per iteration and the achieved rate, per lane its busy time, and the
// iteration's span, so a partition's slowdown and the overlap actually obtained can be read off.
#pragma once
#if defined(NANOFLOW_HAVE_CUDA)
#include <cuda_runtime.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/pipeline_schedule.h"
#include "model/cuda_model.h"

namespace nanoflow::engine {

class ScheduleRunner {
 public:
  // Validates the schedule against the model; the model's lanes must match the schedule's
  // streams (same SM counts, in order). Throws Error(kInvalidInput) otherwise.
  ScheduleRunner(CudaModel& model, PipelineSchedule schedule);
  ~ScheduleRunner();
  ScheduleRunner(const ScheduleRunner&) = delete;
  ScheduleRunner& operator=(const ScheduleRunner&) = delete;

  // The packed plan is in the model's plan buffer (uploaded on model.stream()). Launches only. If a
  // launch throws, the lanes are still joined back into model.stream() before the error propagates.
  void run(const CudaPlanShape& shape, const std::vector<NanoBatchRange>& ranges, const int32_t* prev_samples);
  const PipelineSchedule& schedule() const { return schedule_; }
  std::string profile_report();  // JSON text; empty when profiling is off

 private:
  CudaModel& model_;
  PipelineSchedule schedule_;
  std::vector<int32_t> order_;
  std::vector<std::vector<int32_t>> waits_;  // per node: producers on other lanes
  std::vector<cudaEvent_t> done_;            // per node; created only where another lane waits
  cudaEvent_t fork_ = nullptr;
  std::vector<cudaEvent_t> join_;            // per lane

  // Profile.
  struct Acc {
    double ms = 0, flops = 0, bytes = 0;
  };
  void launch_nodes(const CudaPlanShape& shape, const std::vector<NanoBatchRange>& ranges, bool prof);
  void harvest();
  void node_work(const ScheduleNode& x, const NanoBatchRange& r, const CudaPlanShape& sh, double* flops,
                 double* bytes) const;
  int every_ = 0;
  int64_t runs_ = 0;
  bool pending_ = false;
  std::vector<cudaEvent_t> t0_, t1_;         // per node, timing
  cudaEvent_t span0_ = nullptr, span1_ = nullptr;
  std::vector<double> work_flops_, work_bytes_;  // of the pending profiled run, per node
  std::map<std::pair<int, int>, Acc> acc_;   // (op, lane)
  std::vector<double> lane_busy_ms_;
  double span_ms_ = 0;
  int64_t profiled_ = 0;
};

}  // namespace nanoflow::engine
#endif  // NANOFLOW_HAVE_CUDA
