// Timing of device work with CUDA events (METHOD.md: warm up, repeat, take the median).
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <vector>

namespace nanoflow::cuda {

struct TimingConfig {
  int warmup = 3;    // untimed calls first (module load, handle creation, clocks)
  int reps = 20;     // timed samples; the median is reported
  int inner = 1;     // calls per sample (amortizes launch gaps of very short kernels)
};

struct Timing {
  double median_ms = 0;  // per call
  double min_ms = 0;
  double max_ms = 0;
};

// Times `body(i)` (i counts every call, so callers can rotate among input sets) on `stream`.
Timing time_on_stream(cudaStream_t stream, const TimingConfig& cfg, const std::function<void(int)>& body);

}  // namespace nanoflow::cuda
