// The one WeightStore implementation (private to the loader): weights by canonical name, views into
// memory-mapped safetensors shards or a GGUF file, which it owns.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loader/gguf.h"
#include "loader/safetensors.h"
#include "loader/weights.h"

namespace nanoflow::detail {

class MappedWeightStore final : public WeightStore {
 public:
  const ModelConfig& config() const override { return config_; }
  std::vector<std::string> names() const override;
  bool has(const std::string& name) const override { return weights_.count(name) != 0; }
  const WeightInfo& get(const std::string& name) const override;

  // Filled by the format loaders (weights_hf.cc, weights_gguf.cc).
  std::string source;  // folder or file, for messages
  ModelConfig config_;
  std::map<std::string, WeightInfo> weights_;
  std::vector<SafetensorsFile> shards_;
  std::optional<GgufFile> gguf_;

  // Adds a weight; refuses a second tensor mapping onto the same canonical name.
  void add(WeightInfo w);
  // Every tensor the config implies exists with its shape (and nothing is missing).
  void check_against_config() const;
};

std::unique_ptr<MappedWeightStore> open_hf_folder(const std::string& dir);
std::unique_ptr<MappedWeightStore> open_gguf(const std::string& path);

// Canonical name of a Hugging Face / GGUF tensor name; "" for tensors we deliberately ignore
// (rotary caches); throws kUnsupported for names no supported architecture uses.
std::string canonical_from_hf(const std::string& hf_name, const std::string& source);
std::string canonical_from_gguf(const std::string& gguf_name, const std::string& source);

}  // namespace nanoflow::detail
