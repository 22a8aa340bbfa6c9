// CUDA graph capture and replay. The executor captures one graph per batch-shape bucket; kernels
// captured on a green-context stream keep their partition when replayed (../shared/PERF.md).
//   CudaGraph g;
//   g.capture(stream, [&] { launch_everything(stream); });
//   g.replay(stream);
#pragma once
#include <cuda_runtime.h>

#include <functional>

namespace nanoflow::cuda {

class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(CudaGraph&& o) noexcept;
  CudaGraph& operator=(CudaGraph&& o) noexcept;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Records what `body` launches on `stream` (and on streams it forks from it through events) and
  // instantiates it. If `body` throws, capture is ended and the error propagates.
  void capture(cudaStream_t stream, const std::function<void()>& body);
  void replay(cudaStream_t stream) const;
  bool ready() const { return exec_ != nullptr; }
  size_t num_nodes() const;

 private:
  void reset() noexcept;
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

}  // namespace nanoflow::cuda
