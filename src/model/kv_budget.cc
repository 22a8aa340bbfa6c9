#include "model/kv_budget.h"

#include <algorithm>

#include "core/error.h"

namespace nanoflow {

int64_t kv_pool_pages(size_t free_bytes, size_t total_bytes, size_t margin_bytes, double gpu_memory_utilization,
                      size_t page_bytes) {
  NF_CHECK_INPUT(gpu_memory_utilization >= 0.0 && gpu_memory_utilization <= 1.0)
      << "--gpu-memory-utilization must be in (0, 1] (0 = every free byte but the margin), got "
      << gpu_memory_utilization;
  NF_CHECK(page_bytes > 0) << "KV page of 0 bytes";
  size_t budget = free_bytes > margin_bytes ? free_bytes - margin_bytes : 0;
  if (gpu_memory_utilization > 0.0) {
    const size_t used = total_bytes > free_bytes ? total_bytes - free_bytes : 0;
    const auto allowed = static_cast<size_t>(gpu_memory_utilization * static_cast<double>(total_bytes));
    budget = std::min(budget, allowed > used ? allowed - used : 0);
  }
  return static_cast<int64_t>(budget / page_bytes);
}

}  // namespace nanoflow
