// Runs a pipeline schedule (engine/pipeline_schedule.h) over one iteration on the GPU: the model's
// prologue on its stream, then a fork to the schedule's lanes (the model's streams of
// options().lane_sm_counts, one per schedule stream), every node launched in the validated order
// on its lane after cross-lane waits for the nodes it depends on, and a join back to the model's
// stream (where the executor samples). Nodes of one lane run in launch order; a dependency on
// another lane becomes an event recorded after the producer and waited for before the consumer.
// Launch order is topological, so every wait names an event already recorded in this iteration.
#pragma once
#if defined(NANOFLOW_HAVE_CUDA)
#include <cuda_runtime.h>

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

  // The packed plan is in the model's plan buffer (uploaded on model.stream()). Launches only.
  void run(const CudaPlanShape& shape, const std::vector<NanoBatchRange>& ranges, const int32_t* prev_samples);
  const PipelineSchedule& schedule() const { return schedule_; }

 private:
  CudaModel& model_;
  PipelineSchedule schedule_;
  std::vector<int32_t> order_;
  std::vector<std::vector<int32_t>> waits_;  // per node: producers on other lanes
  std::vector<cudaEvent_t> done_;            // per node; created only where another lane waits
  cudaEvent_t fork_ = nullptr;
  std::vector<cudaEvent_t> join_;            // per lane
};

}  // namespace nanoflow::engine
#endif  // NANOFLOW_HAVE_CUDA
