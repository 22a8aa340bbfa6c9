// Engine on the GPU: CudaModel + CudaExecutor + tokenizer behind the public Engine API
// (EngineConfig.backend == "cuda"). The declaration is CUDA-free so front ends can name it; the
// definition exists only in CUDA builds (NANOFLOW_HAVE_CUDA).
#pragma once
#include <memory>
#include <string>

#include "nanoflow/engine.h"

namespace nanoflow {
class CudaModel;
namespace engine {
class CudaExecutor;

struct CudaEngineOptions {
  int32_t max_sampled = 0;            // 0 = max_running
  size_t kv_margin_bytes = size_t{1} << 30;
  int32_t num_layers_override = 0;    // > 0: first N layers only (quick runs)
  bool autotune_gemms = true;
  bool cuda_graphs = true;            // decode-only iterations as CUDA graphs (CudaExecutorOptions)
  bool transformers_numerics = false;  // CudaModelOptions::transformers_numerics
};

// Borrowed views into the engine's parts (benchmarks read their stats). Valid while the engine lives.
struct CudaEngineParts {
  CudaModel* model = nullptr;
  CudaExecutor* executor = nullptr;
};

// model_path: HF folder, .gguf or preset:<name> (tokenizer from the preset's real tokenizer.json).
// KV pool: config.num_kv_pages when set, else all memory left after weights and workspaces minus
// the margin, capped by config.gpu_memory_utilization when set (model/kv_budget.h;
// config.kv_cache_bytes is a CPU-backend setting and is ignored here).
std::unique_ptr<Engine> create_cuda_engine(const EngineConfig& config, const CudaEngineOptions& options = {},
                                           CudaEngineParts* parts = nullptr);

}  // namespace engine
}  // namespace nanoflow
