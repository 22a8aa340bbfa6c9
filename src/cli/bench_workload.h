// What `bench throughput` and `bench serving` share: the workload options (model, lengths or a
// trace, engine limits), the requests they make (seeded random prompt ids, ignore_eos, the
// trace's or the fixed output length) and the engine they run on (CPU or CUDA, with the CUDA
// executor's counters when there is one).
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nanoflow/engine.h"

namespace nanoflow {
class CudaModel;
namespace engine {
class CudaExecutor;
}
}  // namespace nanoflow

namespace nanoflow::cli {

struct WorkloadOptions {
  std::string model;
#if defined(NANOFLOW_HAVE_CUDA)
  std::string backend = "cuda";
#else
  std::string backend = "cpu";
#endif
  int input_len = 1024;
  int output_len = 512;
  int num_prompts = 200;
  std::string dataset;
  bool dataset_filter = true;   // NanoFlow's filter: in+out <= 4096, in <= 3072, out <= 1024
  int max_batch_tokens = 2048;
  int max_running = 512;
  int num_layers = 0;           // > 0: first N layers (quick runs only; not a real-shape number)
  double kv_margin_gib = 1.0;
  double gpu_memory_utilization = 0.0;  // EngineConfig::gpu_memory_utilization
  bool cuda_graphs = true;      // decode-only iterations through CUDA graphs (CudaExecutorOptions)
  std::string numerics = "fast";  // fast | transformers (CudaModelOptions::transformers_numerics)
  std::string schedule;         // EngineConfig::schedule_path
  double temperature = 0.0;
  uint64_t seed = 0;
  std::string output_json;
};

// Adds the options above to a `bench <name>` subcommand.
void add_workload_options(CLI::App* sub, WorkloadOptions* o);

struct BenchRequest {
  int in = 0, out = 0;
};

// The requests' lengths: num_prompts x (input_len, output_len), or the first num_prompts usable
// rows of the CSV trace (Azure ContextTokens/GeneratedTokens or sarathi's column names).
std::vector<BenchRequest> workload_lengths(const WorkloadOptions& o);
// max_model_len for the engine: a little room over the longest request.
int workload_max_len(const WorkloadOptions& o);

// Seeded random prompts (ids below min(vocab, 100000)), ignore_eos, max_tokens = the length.
std::vector<GenerateRequest> workload_requests(const WorkloadOptions& o, const std::vector<BenchRequest>& lengths,
                                               int64_t vocab);

struct BenchEngine {
  std::unique_ptr<Engine> engine;
  double load_s = 0;
  CudaModel* cuda_model = nullptr;            // CUDA backend only
  engine::CudaExecutor* cuda_executor = nullptr;
};
// The engine the workload runs on; max_queued admits every request at once.
BenchEngine make_bench_engine(const WorkloadOptions& o);

// Submits every request at once and reads their streams to the end. Only requests that finished
// without error count (a failed run must not report a rate).
struct OfflineRun {
  double wall_s = 0;
  int64_t prompt_tokens = 0, output_tokens = 0, streamed_tokens = 0, errors = 0;
  double total_tokens_per_s() const { return wall_s > 0 ? static_cast<double>(prompt_tokens + output_tokens) / wall_s : 0; }
};
OfflineRun run_offline(Engine& engine, std::vector<GenerateRequest> requests);

// Writes `text` to o.output_json when set (kInvalidInput when it cannot).
void write_output_json(const WorkloadOptions& o, const std::string& text);

}  // namespace nanoflow::cli
