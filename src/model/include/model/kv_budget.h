// How many KV pages the GPU pool gets (CudaModel), as a pure function so it is testable without a
// GPU: every byte free after weights and workspaces minus a margin (for the driver, cuBLASLt, CUDA
// graphs, peers), and, with gpu_memory_utilization > 0 (vLLM's --gpu-memory-utilization), no more
// than lets the device's used memory reach that fraction of its total.
#pragma once
#include <cstddef>
#include <cstdint>

namespace nanoflow {

// free_bytes / total_bytes: cudaMemGetInfo after weights and workspaces are allocated (device-wide:
// other processes' memory counts as used). page_bytes: one page of K and V over all layers.
// Throws Error(kInvalidInput) for a utilization outside [0, 1]; returns 0 when nothing fits.
int64_t kv_pool_pages(size_t free_bytes, size_t total_bytes, size_t margin_bytes, double gpu_memory_utilization,
                      size_t page_bytes);

}  // namespace nanoflow
