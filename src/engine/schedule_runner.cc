#if defined(NANOFLOW_HAVE_CUDA)
#include "engine/schedule_runner.h"

#include <algorithm>

#include "core/error.h"
#include "runtime/cuda/cuda_check.h"

namespace nanoflow::engine {

ScheduleRunner::ScheduleRunner(CudaModel& model, PipelineSchedule schedule)
    : model_(model), schedule_(std::move(schedule)) {
  order_ = schedule_.validate(static_cast<int32_t>(model_.config().num_layers));
  const std::vector<int32_t>& lanes = model_.options().lane_sm_counts;
  NF_CHECK_INPUT(lanes.size() == schedule_.streams.size())
      << "schedule '" << schedule_.name << "' has " << schedule_.streams.size() << " streams; the model was set up with "
      << lanes.size() << " lanes";
  const std::vector<int32_t>& targets = model_.options().lane_gemm_sm_targets;
  for (size_t i = 0; i < lanes.size(); ++i) {
    NF_CHECK_INPUT(lanes[i] == schedule_.streams[i].sm_count)
        << "schedule stream " << i << " wants " << schedule_.streams[i].sm_count << " SMs; model lane has " << lanes[i];
    const int32_t t = targets.empty() ? 0 : targets[i];
    NF_CHECK_INPUT(t == schedule_.streams[i].gemm_sm_count)
        << "schedule stream " << i << " wants GEMMs on " << schedule_.streams[i].gemm_sm_count
        << " SMs; model lane targets " << t;
  }
  const size_t n = schedule_.nodes.size();
  waits_.resize(n);
  done_.assign(n, nullptr);
  for (size_t i = 0; i < n; ++i) {
    const ScheduleNode& x = schedule_.nodes[i];
    for (int32_t d : x.deps) {
      if (schedule_.nodes[static_cast<size_t>(d)].stream == x.stream) continue;  // stream order covers it
      waits_[i].push_back(d);
      if (done_[static_cast<size_t>(d)] == nullptr) {
        NF_CUDA_CHECK(cudaEventCreateWithFlags(&done_[static_cast<size_t>(d)], cudaEventDisableTiming)) << "event";
      }
    }
  }
  NF_CUDA_CHECK(cudaEventCreateWithFlags(&fork_, cudaEventDisableTiming)) << "event";
  join_.assign(lanes.size(), nullptr);
  for (auto& e : join_) NF_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming)) << "event";
}

ScheduleRunner::~ScheduleRunner() {
  cudaStreamSynchronize(model_.stream());  // the lanes joined into it; nothing to report from here
  for (cudaEvent_t e : done_)
    if (e != nullptr) cudaEventDestroy(e);
  for (cudaEvent_t e : join_) cudaEventDestroy(e);
  cudaEventDestroy(fork_);
}

void ScheduleRunner::run(const CudaPlanShape& shape, const std::vector<NanoBatchRange>& ranges,
                         const int32_t* prev_samples) {
  NF_CHECK(ranges.size() == schedule_.nano_batches.size())
      << ranges.size() << " nano-batch ranges for a schedule of " << schedule_.nano_batches.size();
  cudaStream_t main = model_.stream();
  model_.forward_prologue(shape, prev_samples);
  NF_CUDA_CHECK(cudaEventRecord(fork_, main)) << "fork";
  const int32_t lanes = static_cast<int32_t>(join_.size());
  for (int32_t l = 0; l < lanes; ++l) NF_CUDA_CHECK(cudaStreamWaitEvent(model_.lane_stream(l), fork_, 0)) << "fork wait";
  for (int32_t i : order_) {
    const ScheduleNode& x = schedule_.nodes[static_cast<size_t>(i)];
    cudaStream_t s = model_.lane_stream(x.stream);
    for (int32_t d : waits_[static_cast<size_t>(i)])
      NF_CUDA_CHECK(cudaStreamWaitEvent(s, done_[static_cast<size_t>(d)], 0)) << "dependency wait";
    model_.forward_op(x.op, x.layer, ranges[static_cast<size_t>(x.nano_batch)], x.stream, shape);
    if (done_[static_cast<size_t>(i)] != nullptr) {
      NF_CUDA_CHECK(cudaEventRecord(done_[static_cast<size_t>(i)], s)) << "node event";
    }
  }
  for (int32_t l = 0; l < lanes; ++l) {
    NF_CUDA_CHECK(cudaEventRecord(join_[static_cast<size_t>(l)], model_.lane_stream(l))) << "join";
    NF_CUDA_CHECK(cudaStreamWaitEvent(main, join_[static_cast<size_t>(l)], 0)) << "join wait";
  }
}

}  // namespace nanoflow::engine
#endif  // NANOFLOW_HAVE_CUDA
