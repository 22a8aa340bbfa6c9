// Hugging Face folders: config.json + model.safetensors, or model.safetensors.index.json + shards.
#include <algorithm>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/log.h"
#include "weight_store_impl.h"

namespace nanoflow::detail {
namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxJsonBytes = size_t{64} << 20;  // config.json / index: far above real sizes

void add_shard_tensors(MappedWeightStore& ws, const SafetensorsFile& f, const SafetensorsIndex* index,
                       const std::string& shard_name) {
  for (const SafetensorsTensor& t : f.tensors()) {
    if (index) {
      auto it = index->weight_map.find(t.name);
      // A tensor the index places elsewhere (or not at all) would be a second, conflicting copy.
      if (it == index->weight_map.end() || it->second != shard_name)
        NF_THROW(kBadFile) << f.source() << ": tensor '" << t.name << "' is not assigned to this shard by the index";
    }
    const std::string canon = canonical_from_hf(t.name, f.source());
    if (canon.empty()) continue;
    WeightInfo w;
    w.name = canon;
    w.file = f.source();
    w.view.data = const_cast<uint8_t*>(f.tensor_data(t));  // read-only map: views never write
    w.view.dtype = t.dtype;
    w.view.shape = t.shape;
    ws.add(std::move(w));
  }
}

}  // namespace

std::unique_ptr<MappedWeightStore> open_hf_folder(const std::string& dir) {
  auto ws = std::make_unique<MappedWeightStore>();
  ws->source = dir;
  const std::string config_path = (fs::path(dir) / "config.json").string();
  if (!fs::exists(config_path)) NF_THROW(kBadFile) << dir << ": no config.json";
  ws->config_ = parse_hf_config(read_text_file(config_path, kMaxJsonBytes), config_path);
  ws->config_.name = fs::path(dir).lexically_normal().filename().string();
  if (ws->config_.name.empty()) ws->config_.name = fs::path(dir).lexically_normal().parent_path().filename().string();

  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";
  if (fs::exists(index_path)) {
    const SafetensorsIndex index = parse_safetensors_index(read_text_file(index_path.string(), kMaxJsonBytes), index_path.string());
    std::set<std::string> seen;
    for (const std::string& shard : index.shards()) {
      const fs::path p = fs::path(dir) / shard;
      if (!fs::exists(p)) NF_THROW(kBadFile) << index_path.string() << ": shard " << shard << " is missing from " << dir;
      ws->shards_.push_back(SafetensorsFile::open(p.string()));
      add_shard_tensors(*ws, ws->shards_.back(), &index, shard);
      for (const auto& t : ws->shards_.back().tensors()) seen.insert(t.name);
    }
    for (const auto& [name, shard] : index.weight_map)
      if (!seen.count(name)) NF_THROW(kBadFile) << index_path.string() << ": tensor '" << name << "' is not in its shard " << shard;
  } else if (fs::exists(single_path)) {
    ws->shards_.push_back(SafetensorsFile::open(single_path.string()));
    add_shard_tensors(*ws, ws->shards_.back(), nullptr, "");
  } else {
    NF_THROW(kBadFile) << dir << ": no model.safetensors or model.safetensors.index.json";
  }
  ws->check_against_config();
  NF_LOG(kDebug) << "opened " << dir << ": " << ws->weights_.size() << " weights in " << ws->shards_.size() << " file(s)";
  return ws;
}

}  // namespace nanoflow::detail
