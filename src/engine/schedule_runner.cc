#if defined(NANOFLOW_HAVE_CUDA)
#include "engine/schedule_runner.h"

#include <algorithm>
#include <cstdlib>

#include <nlohmann/json.hpp>

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
    NF_CHECK_INPUT(schedule_.streams[i].remainder == (model_.options().lane_remainder == static_cast<int32_t>(i)))
        << "schedule stream " << i << (schedule_.streams[i].remainder ? " takes" : " does not take")
        << " the remainder SMs; the model's lane " << (schedule_.streams[i].remainder ? "does not" : "does");
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
  if (const char* v = std::getenv("NANOFLOW_OP_PROFILE")) every_ = std::max(0, std::atoi(v));
  if (every_ > 0) {
    t0_.assign(n, nullptr);
    t1_.assign(n, nullptr);
    for (size_t i = 0; i < n; ++i) {
      NF_CUDA_CHECK(cudaEventCreate(&t0_[i])) << "event";
      NF_CUDA_CHECK(cudaEventCreate(&t1_[i])) << "event";
    }
    NF_CUDA_CHECK(cudaEventCreate(&span0_)) << "event";
    NF_CUDA_CHECK(cudaEventCreate(&span1_)) << "event";
    work_flops_.assign(n, 0.0);
    work_bytes_.assign(n, 0.0);
    lane_busy_ms_.assign(lanes.size(), 0.0);
  }
}

ScheduleRunner::~ScheduleRunner() {
  cudaStreamSynchronize(model_.stream());  // the lanes joined into it; nothing to report from here
  for (cudaEvent_t e : done_)
    if (e != nullptr) cudaEventDestroy(e);
  for (cudaEvent_t e : join_) cudaEventDestroy(e);
  cudaEventDestroy(fork_);
  for (size_t i = 0; i < t0_.size(); ++i) {
    cudaEventDestroy(t0_[i]);
    cudaEventDestroy(t1_[i]);
  }
  if (span0_ != nullptr) cudaEventDestroy(span0_);
  if (span1_ != nullptr) cudaEventDestroy(span1_);
}

// Work of a node for the profile's rates: GEMM FLOPs; the bytes decode attention reads when the
// node's nano-batch holds every decode sequence (else 0: the per-nano-batch KV sum is not known).
void ScheduleRunner::node_work(const ScheduleNode& x, const NanoBatchRange& r, const CudaPlanShape& sh, double* flops,
                               double* bytes) const {
  const ModelConfig& c = model_.config();
  const double n = r.tokens(), h = static_cast<double>(c.hidden_size), q = static_cast<double>(c.q_dim()),
               kv = static_cast<double>(c.kv_dim()), inter = static_cast<double>(c.intermediate_size);
  *flops = 0;
  *bytes = 0;
  if (c.num_experts > 0) return;
  switch (x.op) {
    case PipelineOp::kQkv: *flops = 2 * n * h * (q + 2 * kv); break;
    case PipelineOp::kOProj: *flops = 2 * n * q * h; break;
    case PipelineOp::kGateUp: *flops = 2 * n * h * 2 * inter; break;
    case PipelineOp::kDown: *flops = 2 * n * inter * h; break;
    case PipelineOp::kAttention:
      if (r.decode_seqs() == sh.num_decode && r.tiles() == 0) *bytes = static_cast<double>(sh.sum_decode_kv) * kv * 4;
      break;
    default: break;
  }
}

void ScheduleRunner::harvest() {
  if (!pending_) return;
  pending_ = false;
  NF_CUDA_CHECK(cudaEventSynchronize(span1_)) << "profile";
  float ms = 0;
  NF_CUDA_CHECK(cudaEventElapsedTime(&ms, span0_, span1_)) << "profile span";
  span_ms_ += ms;
  for (size_t i = 0; i < schedule_.nodes.size(); ++i) {
    const ScheduleNode& x = schedule_.nodes[i];
    NF_CUDA_CHECK(cudaEventElapsedTime(&ms, t0_[i], t1_[i])) << "profile node";
    Acc& a = acc_[{static_cast<int>(x.op), x.stream}];
    a.ms += ms;
    a.flops += work_flops_[i];
    a.bytes += work_bytes_[i];
    lane_busy_ms_[static_cast<size_t>(x.stream)] += ms;
  }
  ++profiled_;
}

std::string ScheduleRunner::profile_report() {
  if (every_ == 0) return "";
  harvest();
  nlohmann::json j;
  const double it = static_cast<double>(std::max<int64_t>(profiled_, 1));
  j["schedule"] = schedule_.name;
  j["profiled_iterations"] = profiled_;
  j["span_ms_per_iteration"] = span_ms_ / it;
  for (size_t l = 0; l < lane_busy_ms_.size(); ++l)
    j["lanes"].push_back({{"lane", l}, {"sm_count", schedule_.streams[l].sm_count},
                          {"remainder", schedule_.streams[l].remainder},
                          {"gemm_sm_count", schedule_.streams[l].gemm_sm_count}, {"busy_ms_per_iteration", lane_busy_ms_[l] / it}});
  for (const auto& [key, a] : acc_) {
    nlohmann::json o = {{"op", pipeline_op_name(static_cast<PipelineOp>(key.first))}, {"lane", key.second},
                        {"ms_per_iteration", a.ms / it}};
    if (a.flops > 0 && a.ms > 0) o["tflops"] = a.flops / (a.ms * 1e-3) / 1e12;
    if (a.bytes > 0 && a.ms > 0) o["gb_per_s"] = a.bytes / (a.ms * 1e-3) / 1e9;
    j["ops"].push_back(o);
  }
  return j.dump();
}

void ScheduleRunner::run(const CudaPlanShape& shape, const std::vector<NanoBatchRange>& ranges,
                         const int32_t* prev_samples) {
  NF_CHECK(ranges.size() == schedule_.nano_batches.size())
      << ranges.size() << " nano-batch ranges for a schedule of " << schedule_.nano_batches.size();
  cudaStream_t main = model_.stream();
  bool prof = false;
  if (every_ > 0 && std::all_of(ranges.begin(), ranges.end(), [](const NanoBatchRange& r) { return r.tokens() > 0; }))
    prof = runs_++ % every_ == 0;
  if (prof) harvest();  // the previous profiled run finished long ago (N >= 2)
  model_.forward_prologue(shape, prev_samples);
  if (prof) {
    NF_CUDA_CHECK(cudaEventRecord(span0_, main)) << "profile";
  }
  NF_CUDA_CHECK(cudaEventRecord(fork_, main)) << "fork";
  const int32_t lanes = static_cast<int32_t>(join_.size());
  for (int32_t l = 0; l < lanes; ++l) NF_CUDA_CHECK(cudaStreamWaitEvent(model_.lane_stream(l), fork_, 0)) << "fork wait";
  // Whatever happens below, the lanes join the model stream again before this returns or throws:
  // the next iteration's upload and page copies run there and must not overtake this one's work.
  auto join = [&] {
    for (int32_t l = 0; l < lanes; ++l) {
      NF_CUDA_CHECK(cudaEventRecord(join_[static_cast<size_t>(l)], model_.lane_stream(l))) << "join";
      NF_CUDA_CHECK(cudaStreamWaitEvent(main, join_[static_cast<size_t>(l)], 0)) << "join wait";
    }
  };
  try {
    launch_nodes(shape, ranges, prof);
  } catch (...) {
    try {
      join();
    } catch (...) {  // the first error is the one to report
    }
    throw;
  }
  join();
  if (prof) {
    NF_CUDA_CHECK(cudaEventRecord(span1_, main)) << "profile";
    pending_ = true;
  }
}

void ScheduleRunner::launch_nodes(const CudaPlanShape& shape, const std::vector<NanoBatchRange>& ranges, bool prof) {
  for (int32_t i : order_) {
    const ScheduleNode& x = schedule_.nodes[static_cast<size_t>(i)];
    cudaStream_t s = model_.lane_stream(x.stream);
    for (int32_t d : waits_[static_cast<size_t>(i)])
      NF_CUDA_CHECK(cudaStreamWaitEvent(s, done_[static_cast<size_t>(d)], 0)) << "dependency wait";
    const NanoBatchRange& r = ranges[static_cast<size_t>(x.nano_batch)];
    if (prof) {
      NF_CUDA_CHECK(cudaEventRecord(t0_[static_cast<size_t>(i)], s)) << "profile";
      node_work(x, r, shape, &work_flops_[static_cast<size_t>(i)], &work_bytes_[static_cast<size_t>(i)]);
    }
    model_.forward_op(x.op, x.layer, r, x.stream, shape);
    if (prof) {
      NF_CUDA_CHECK(cudaEventRecord(t1_[static_cast<size_t>(i)], s)) << "profile";
    }
    if (done_[static_cast<size_t>(i)] != nullptr) {
      NF_CUDA_CHECK(cudaEventRecord(done_[static_cast<size_t>(i)], s)) << "node event";
    }
  }
}

}  // namespace nanoflow::engine
#endif  // NANOFLOW_HAVE_CUDA
