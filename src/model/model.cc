#include "model/model.h"

#include "core/error.h"
#include "core/log.h"
#include "cpu_model.h"
#include "cpu_weights.h"
#include "loader/weights.h"

namespace nanoflow {

std::unique_ptr<Model> Model::load_cpu(const std::string& path, const ModelOptions& options) {
  NF_CHECK_INPUT(options.num_kv_pages >= 0) << "num_kv_pages " << options.num_kv_pages;
  auto store = WeightStore::open(path);
  ModelConfig cfg = store->config();
  cfg.validate(path);
  if (cfg.head_dim % 2 != 0) NF_THROW(kBadFile) << path << ": head_dim " << cfg.head_dim << " is odd (RoPE rotates pairs)";
  model_cpu::CpuWeights weights = model_cpu::load_cpu_weights(*store, cfg, options.bf16_weights);
  // The store (and its memory maps) is no longer needed: the f32 copies are owned by the model.
  return std::make_unique<model_cpu::CpuModel>(std::move(cfg), std::move(weights), options);
}

}  // namespace nanoflow
