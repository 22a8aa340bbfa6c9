#if defined(NANOFLOW_HAVE_CUDA)
#include "op_profile.h"

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "runtime/cuda/cuda_check.h"

namespace nanoflow::model_cuda {

const char* op_name(Op op) {
  switch (op) {
    case Op::kEmbed: return "embed";
    case Op::kNorm: return "rms_norm";
    case Op::kQkvGemm: return "qkv_gemm";
    case Op::kRopeKv: return "rope_kv_write";
    case Op::kDecodeAttn: return "decode_attention";
    case Op::kPrefillAttn: return "prefill_attention";
    case Op::kOGemm: return "o_gemm";
    case Op::kGateUpGemm: return "gate_up_gemm";
    case Op::kSilu: return "silu_mul";
    case Op::kDownGemm: return "down_gemm";
    case Op::kMoe: return "moe_other";
    case Op::kLmHead: return "lm_head";
    case Op::kCount: break;
  }
  return "?";
}

namespace {
const char* kind_name(size_t k) {
  static const char* names[] = {"decode_only", "prefill_only", "mixed"};
  return names[k];
}
}  // namespace

OpProfiler::OpProfiler() {
  if (const char* v = std::getenv("NANOFLOW_OP_PROFILE")) every_ = std::max(0, std::atoi(v));
}

OpProfiler::~OpProfiler() {
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
}

cudaEvent_t OpProfiler::event(size_t i) {
  while (events_.size() <= i) {
    cudaEvent_t e = nullptr;
    NF_CUDA_CHECK(cudaEventCreate(&e)) << "profiler event";
    events_.push_back(e);
  }
  return events_[i];
}

bool OpProfiler::begin(IterKind kind, int64_t tokens, cudaStream_t stream) {
  active_ = false;
  if (every_ <= 0) return false;
  if (forwards_++ % every_ != 0) return false;
  harvest();  // the previous profiled forward, N iterations ago
  active_ = true;
  kind_ = kind;
  tokens_ = tokens;
  NF_CUDA_CHECK(cudaEventRecord(event(0), stream)) << "profiler event";
  return true;
}

void OpProfiler::mark(Op op, double flops, double bytes, cudaStream_t stream) {
  if (!active_) return;
  marks_.push_back({op, flops, bytes});
  NF_CUDA_CHECK(cudaEventRecord(event(marks_.size()), stream)) << "profiler event";
}

void OpProfiler::harvest() {
  if (marks_.empty()) return;  // nothing recorded since the last harvest
  NF_CUDA_CHECK(cudaEventSynchronize(event(marks_.size()))) << "profiler harvest";
  const size_t k = static_cast<size_t>(kind_);
  ++iters_[k];
  tokens_acc_[k] += tokens_;
  for (size_t i = 0; i < marks_.size(); ++i) {
    float ms = 0.f;
    NF_CUDA_CHECK(cudaEventElapsedTime(&ms, event(i), event(i + 1))) << "profiler elapsed";
    Acc& a = acc_[k][static_cast<size_t>(marks_[i].op)];
    a.ms += ms;
    a.flops += marks_[i].flops;
    a.bytes += marks_[i].bytes;
    ++a.calls;
    total_ms_[k] += ms;
  }
  marks_.clear();
}

std::string OpProfiler::report() {
  if (every_ <= 0) return {};
  harvest();
  nlohmann::json j;
  j["every"] = every_;
  for (size_t k = 0; k < static_cast<size_t>(IterKind::kCount); ++k) {
    if (iters_[k] == 0) continue;
    nlohmann::json kj;
    kj["iterations"] = iters_[k];
    kj["tokens_per_iteration"] = static_cast<double>(tokens_acc_[k]) / static_cast<double>(iters_[k]);
    kj["ms_per_iteration"] = total_ms_[k] / static_cast<double>(iters_[k]);
    for (size_t o = 0; o < static_cast<size_t>(Op::kCount); ++o) {
      const Acc& a = acc_[k][o];
      if (a.calls == 0) continue;
      nlohmann::json oj;
      oj["ms_per_iteration"] = a.ms / static_cast<double>(iters_[k]);
      oj["share"] = total_ms_[k] > 0 ? a.ms / total_ms_[k] : 0.0;
      if (a.flops > 0) oj["tflops"] = a.flops / (a.ms * 1e-3) / 1e12;
      if (a.bytes > 0) oj["gbs"] = a.bytes / (a.ms * 1e-3) / 1e9;
      kj["ops"][op_name(static_cast<Op>(o))] = oj;
    }
    j[kind_name(k)] = kj;
  }
  return j.dump();
}

}  // namespace nanoflow::model_cuda
#endif  // NANOFLOW_HAVE_CUDA
