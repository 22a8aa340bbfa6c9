// Engine::create(EngineConfig): model + tokenizer from a path, KV pool sized from the config.
#include "core/error.h"
#include "core/log.h"
#include "engine/cuda_engine.h"
#include "engine/engine_core.h"
#include "engine/tokenizer_loading.h"
#include "loader/weights.h"
#include "model/model.h"

namespace nanoflow {

std::unique_ptr<Engine> Engine::create(const EngineConfig& config) {
#if defined(NANOFLOW_HAVE_CUDA)
  if (config.backend == "cuda") return engine::create_cuda_engine(config);
#endif
  NF_CHECK_INPUT(config.backend == "cpu") << "backend '" << config.backend
                                          << "' is not available in this build (use cpu)";
  NF_CHECK_INPUT(config.num_kv_pages >= 0 && config.kv_cache_bytes >= 0) << "KV pool size must not be negative";
  NF_CHECK_INPUT(config.schedule_path.empty()) << "--schedule " << config.schedule_path
                                               << ": pipeline schedules run on the cuda backend only";
  ModelOptions mo;
  mo.num_threads = config.num_threads;
  mo.num_kv_pages = config.num_kv_pages;
  if (mo.num_kv_pages == 0) {
    // The CPU backend keeps K and V in f32: 4 bytes per element.
    const ModelConfig mc = WeightStore::open(config.model_path)->config();
    const int64_t per_page = mc.kv_bytes_per_token(4) * kPageSize;
    NF_CHECK_INPUT(per_page > 0) << "model " << config.model_path << " has no KV";
    mo.num_kv_pages = std::max<int64_t>(1, config.kv_cache_bytes / per_page);
  }
  auto tokenizer = load_tokenizer(config.model_path);
  auto model = Model::load_cpu(config.model_path, mo);
  NF_CHECK_FILE(model->config().vocab_size >= tokenizer->vocab_size())
      << config.model_path << ": the tokenizer has " << tokenizer->vocab_size() << " ids, the model "
      << model->config().vocab_size << " embedding rows";
  NF_LOG(kInfo) << "engine: " << model->config().name << ", " << model->num_kv_pages() << " KV pages of "
                << kPageSize << " tokens";
  return create(std::move(model), std::move(tokenizer), config);
}

}  // namespace nanoflow
