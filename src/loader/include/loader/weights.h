// Model weights by canonical name, from a Hugging Face folder (safetensors, single or sharded) or a
// GGUF file. Views point into read-only memory maps (zero copy); conversion to f32/bf16 on demand.
//
// Canonical names (both formats map onto these; layouts are Hugging Face's: [out, in] row-major,
// Q/K rows in HF order — GGUF's llama Q/K row permutation is undone by the loader):
//   embed_tokens                          [vocab, hidden]
//   layers.{i}.attn_norm                  [hidden]
//   layers.{i}.q_proj / k_proj / v_proj   [q_dim|kv_dim, hidden]
//   layers.{i}.q_bias / k_bias / v_bias   [q_dim|kv_dim]        (Qwen2)
//   layers.{i}.o_proj                     [hidden, q_dim]
//   layers.{i}.mlp_norm                   [hidden]
//   layers.{i}.gate_proj / up_proj        [inter, hidden]       (dense)
//   layers.{i}.down_proj                  [hidden, inter]
//   layers.{i}.router                     [experts, hidden]     (MoE)
//   layers.{i}.experts.{e}.gate_proj / up_proj / down_proj      (MoE, shapes as dense)
//   final_norm                            [hidden]
//   lm_head                               [vocab, hidden]       (absent when tied)
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "loader/model_config.h"

namespace nanoflow {

struct WeightInfo {
  std::string name;      // canonical name
  std::string file;      // file it lives in (for messages)
  TensorView view;       // dtype may be a GGUF block type; data points into the mapped file
  bool permuted_qk = false;  // GGUF llama Q/K: rows must be un-permuted when read (read_* do it)
};

class WeightStore {
 public:
  virtual ~WeightStore() = default;
  // `path`: a folder with config.json + *.safetensors, or a .gguf file. Validates everything it
  // reads; throws Error(kBadFile) naming the file and the reason.
  static std::unique_ptr<WeightStore> open(const std::string& path);

  virtual const ModelConfig& config() const = 0;
  virtual std::vector<std::string> names() const = 0;
  virtual bool has(const std::string& name) const = 0;
  virtual const WeightInfo& get(const std::string& name) const = 0;  // throws kBadFile if missing
  // Converts (dequantizes, un-permutes) the whole tensor into `out` (numel values).
  void read_f32(const std::string& name, float* out) const;
  void read_bf16(const std::string& name, uint16_t* out) const;
};

}  // namespace nanoflow
