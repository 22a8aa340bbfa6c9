#include "runtime/cuda/graph.h"

#include <utility>

#include "runtime/cuda/cuda_check.h"

namespace nanoflow::cuda {

CudaGraph::~CudaGraph() { reset(); }
CudaGraph::CudaGraph(CudaGraph&& o) noexcept
    : graph_(std::exchange(o.graph_, nullptr)), exec_(std::exchange(o.exec_, nullptr)) {}
CudaGraph& CudaGraph::operator=(CudaGraph&& o) noexcept {
  if (this != &o) {
    reset();
    graph_ = std::exchange(o.graph_, nullptr);
    exec_ = std::exchange(o.exec_, nullptr);
  }
  return *this;
}
void CudaGraph::reset() noexcept {
  if (exec_ != nullptr) (void)cudaGraphExecDestroy(exec_);
  if (graph_ != nullptr) (void)cudaGraphDestroy(graph_);
  exec_ = nullptr;
  graph_ = nullptr;
}

void CudaGraph::capture(cudaStream_t stream, const std::function<void()>& body) {
  reset();
  // Thread-local mode: other threads may keep launching un-captured work meanwhile.
  NF_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    body();
  } catch (...) {
    cudaGraph_t broken = nullptr;
    (void)cudaStreamEndCapture(stream, &broken);
    if (broken != nullptr) (void)cudaGraphDestroy(broken);
    (void)cudaGetLastError();
    throw;
  }
  NF_CUDA_CHECK(cudaStreamEndCapture(stream, &graph_)) << "a captured launch failed";
  NF_CUDA_CHECK(cudaGraphInstantiate(&exec_, graph_, 0));
}

void CudaGraph::replay(cudaStream_t stream) const {
  NF_CHECK(exec_ != nullptr) << "replaying a graph that was never captured";
  NF_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
}

size_t CudaGraph::num_nodes() const {
  if (graph_ == nullptr) return 0;
  size_t n = 0;
  NF_CUDA_CHECK(cudaGraphGetNodes(graph_, nullptr, &n));
  return n;
}

}  // namespace nanoflow::cuda
