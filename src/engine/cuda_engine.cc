#if defined(NANOFLOW_HAVE_CUDA)
#include "engine/cuda_engine.h"

#include <algorithm>

#include "core/error.h"
#include "core/log.h"
#include "engine/cuda_executor.h"
#include "engine/engine_core.h"
#include "engine/tokenizer_loading.h"
#include "loader/weights.h"
#include "model/cuda_model.h"
#include "model/presets.h"

namespace nanoflow::engine {

std::unique_ptr<Engine> create_cuda_engine(const EngineConfig& config, const CudaEngineOptions& options,
                                           CudaEngineParts* parts) {
  NF_CHECK_INPUT(config.max_batch_tokens > 0 && config.max_running > 0)
      << "max_batch_tokens " << config.max_batch_tokens << ", max_running " << config.max_running;
  std::unique_ptr<Tokenizer> tokenizer;
  int64_t num_layers = 0;  // known before the weights load, so a bad schedule fails fast
  if (auto preset = find_preset(config.model_path)) {
    const ResolvedPreset r = resolve_preset(*preset);
    NF_CHECK_KIND(ErrorKind::kNotFound, !r.tokenizer_dir.empty())
        << "preset " << preset->name << ": no tokenizer.json in " << preset->tokenizer_folder;
    tokenizer = load_tokenizer(r.tokenizer_dir);
    num_layers = r.config.num_layers;
  } else {
    tokenizer = load_tokenizer(config.model_path);
    if (!config.schedule_path.empty()) num_layers = WeightStore::open(config.model_path)->config().num_layers;
  }
  if (options.num_layers_override > 0) num_layers = std::min<int64_t>(num_layers, options.num_layers_override);
  CudaModelOptions mo;
  mo.max_batch_tokens = config.max_batch_tokens;
  mo.max_seqs = config.max_running;
  mo.max_sampled = options.max_sampled > 0 ? options.max_sampled : config.max_running;
  mo.max_model_len = config.max_model_len;
  mo.num_kv_pages = config.num_kv_pages;
  mo.kv_margin_bytes = options.kv_margin_bytes;
  mo.gpu_memory_utilization = config.gpu_memory_utilization;
  mo.num_layers_override = options.num_layers_override;
  mo.autotune_gemms = options.autotune_gemms;
  mo.transformers_numerics = options.transformers_numerics;
  // A schedule's streams become the model's lanes (made before its KV pool is sized).
  PipelineSchedule schedule;
  if (!config.schedule_path.empty()) {
    schedule = read_schedule_file(config.schedule_path);  // validated once the layer count is known
    try {
      schedule.validate(static_cast<int32_t>(num_layers));
    } catch (const Error& e) {
      NF_THROW(kInvalidInput) << "schedule file " << config.schedule_path << ": " << e.what();
    }
    if (!schedule.is_sequential())
      for (const ScheduleStream& st : schedule.streams) {
        if (st.remainder) mo.lane_remainder = static_cast<int32_t>(mo.lane_sm_counts.size());
        mo.lane_sm_counts.push_back(st.sm_count);
        mo.lane_gemm_sm_targets.push_back(st.gemm_sm_count);
      }
  }
  std::unique_ptr<CudaModel> model = CudaModel::load(config.model_path, mo);
  const auto layers = static_cast<int32_t>(model->config().num_layers);
  if (config.schedule_path.empty()) schedule = sequential_schedule(layers);
  NF_CHECK_FILE(model->config().vocab_size >= tokenizer->vocab_size())
      << config.model_path << ": the tokenizer has " << tokenizer->vocab_size() << " ids, the model "
      << model->config().vocab_size << " embedding rows";
  CudaExecutorOptions eo;
  eo.cuda_graphs = options.cuda_graphs;
  auto executor = std::make_unique<CudaExecutor>(*model, schedule, eo);
  if (parts != nullptr) {
    parts->model = model.get();
    parts->executor = executor.get();
  }
  const ModelConfig mc = model->config();
  NF_LOG(kInfo) << "engine (cuda): " << mc.name << ", " << model->memory_report();
  return make_engine(std::move(model), std::move(executor), std::move(tokenizer), mc, config);
}

}  // namespace nanoflow::engine
#endif  // NANOFLOW_HAVE_CUDA
