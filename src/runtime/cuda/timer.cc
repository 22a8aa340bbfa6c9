#include "runtime/cuda/timer.h"

#include <algorithm>

#include "runtime/cuda/cuda_check.h"
#include "runtime/cuda/device.h"

namespace nanoflow::cuda {

Timing time_on_stream(cudaStream_t stream, const TimingConfig& cfg, const std::function<void(int)>& body) {
  NF_CHECK_INPUT(cfg.reps > 0 && cfg.inner > 0 && cfg.warmup >= 0) << "timing config";
  int call = 0;
  for (int i = 0; i < cfg.warmup; ++i) body(call++);
  NF_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<Event> starts, stops;
  starts.reserve(cfg.reps);
  stops.reserve(cfg.reps);
  for (int r = 0; r < cfg.reps; ++r) {
    starts.emplace_back();
    stops.emplace_back();
    starts.back().record(stream);
    for (int j = 0; j < cfg.inner; ++j) body(call++);
    stops.back().record(stream);
  }
  NF_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> ms;
  for (int r = 0; r < cfg.reps; ++r) ms.push_back(stops[r].elapsed_ms_since(starts[r]) / cfg.inner);
  std::sort(ms.begin(), ms.end());
  Timing t;
  t.median_ms = ms[ms.size() / 2];
  t.min_ms = ms.front();
  t.max_ms = ms.back();
  return t;
}

}  // namespace nanoflow::cuda
