// A model ready to run: config + weights on a backend + its KV pools. The forward pass runs over a
// BatchPlan, writes the plan's K/V into the pages it names, and returns logits of sampled rows.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "loader/model_config.h"
#include "model/batch_plan.h"

namespace nanoflow {

struct ModelOptions {
  int num_threads = 0;          // CPU backend: 0 = all cores
  int64_t num_kv_pages = 0;     // pages in the KV pool (each kPageSize tokens, all layers)
  // CPU backend: keep the projection/LM-head weights in bf16 (rounded) instead of f32: half the
  // memory and bytes streamed per decode step, f32 arithmetic. Changes results unless the
  // checkpoint is bf16 already; the golden tests use f32.
  bool bf16_weights = false;
};

class Model {
 public:
  virtual ~Model() = default;
  // CPU backend: weights converted to f32/bf16 on load.
  static std::unique_ptr<Model> load_cpu(const std::string& path, const ModelOptions& options);

  virtual const ModelConfig& config() const = 0;
  virtual int64_t num_kv_pages() const = 0;
  // logits: [plan.sample_rows.size(), vocab_size] f32, row i for token plan.sample_rows[i].
  // One forward/copy_page at a time (not re-entrant); any thread may call it.
  virtual void forward(const BatchPlan& plan, float* logits) = 0;
  // Copies the K/V of page `src` into page `dst` in every layer (copy-on-write of a shared page).
  virtual void copy_page(int32_t src, int32_t dst) = 0;
};

}  // namespace nanoflow
