// Opt-in breakdown of the GPU time of CudaModel forwards by op (NANOFLOW_OP_PROFILE=N profiles
// every Nth forward; unset or 0: off, and nothing here costs anything).
//
// A profiled forward records a CUDA event after each op's launches; the op's time is the gap to
// the previous event, so the ops of one forward tile its whole stream time. Events of a profiled
// forward are read when the next profiled forward begins (N iterations later, long finished) or
// at report(). Forwards are grouped by kind (decode only / prefill only / mixed) because their
// costs differ in kind, not just size. Each op also accumulates its work (FLOPs or bytes) so the
// report can give achieved rates next to the times.
#pragma once
#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace nanoflow::model_cuda {

enum class Op : int {
  kEmbed, kNorm, kQkvGemm, kRopeKv, kDecodeAttn, kPrefillAttn, kOGemm, kGateUpGemm, kSilu, kDownGemm,
  kMoe, kLmHead, kCount
};
const char* op_name(Op op);

enum class IterKind : int { kDecodeOnly, kPrefillOnly, kMixed, kCount };

class OpProfiler {
 public:
  OpProfiler();  // reads NANOFLOW_OP_PROFILE
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Called at the start of every forward; true when this one is profiled (then call mark() after
  // each op and end() last).
  bool begin(IterKind kind, int64_t tokens, cudaStream_t stream);
  // The time since the previous mark (or begin) goes to `op`; `flops` and `bytes` are its work.
  void mark(Op op, double flops, double bytes, cudaStream_t stream);
  bool active() const { return active_; }
  bool enabled() const { return every_ > 0; }  // NANOFLOW_OP_PROFILE set: forwards run eagerly
  // JSON text: per kind, iterations, tokens, ms per iteration, and per op ms / share / rates.
  // Empty when profiling is off.
  std::string report();

 private:
  struct Mark {
    Op op;
    double flops, bytes;
  };
  struct Acc {
    double ms = 0, flops = 0, bytes = 0;
    int64_t calls = 0;
  };
  void harvest();
  cudaEvent_t event(size_t i);

  int every_ = 0;
  int64_t forwards_ = 0;
  bool active_ = false;
  IterKind kind_ = IterKind::kMixed;  // of the profiled forward whose marks_ are unread
  int64_t tokens_ = 0;
  std::vector<cudaEvent_t> events_;  // [0] = begin, then one per mark
  std::vector<Mark> marks_;          // of the last profiled forward, until harvested
  std::array<std::array<Acc, static_cast<size_t>(Op::kCount)>, static_cast<size_t>(IterKind::kCount)> acc_{};
  std::array<int64_t, static_cast<size_t>(IterKind::kCount)> iters_{}, tokens_acc_{};
  std::array<double, static_cast<size_t>(IterKind::kCount)> total_ms_{};
};

}  // namespace nanoflow::model_cuda
