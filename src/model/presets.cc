#include "model/presets.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "core/mmap.h"

namespace nanoflow {
namespace {

constexpr std::string_view kPrefix = "preset:";

std::vector<std::string> models_dirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("NANOFLOW_MODELS_DIR"); env != nullptr && *env != '\0') dirs.emplace_back(env);
  dirs.emplace_back("shared/models");
  dirs.emplace_back("../shared/models");
#ifdef NF_DEFAULT_MODELS_DIR
  dirs.emplace_back(NF_DEFAULT_MODELS_DIR);
#endif
  return dirs;
}

}  // namespace

const std::vector<PresetInfo>& preset_list() {
  // Tokenizers: the 70B/72B folders ship only config.json; their vocabularies are those of the
  // family's small model (same tokenizer.json upstream).
  static const std::vector<PresetInfo> kPresets = {
      {"llama3-8b", "Meta-Llama-3-8B-Instruct", "Meta-Llama-3-8B-Instruct"},
      {"llama3.1-8b", "Meta-Llama-3.1-8B-Instruct", "Meta-Llama-3.1-8B-Instruct"},
      {"llama3-70b", "Meta-Llama-3-70B-Instruct", "Meta-Llama-3-8B-Instruct"},
      {"llama2-7b", "Llama-2-7b-chat-hf", "Llama-2-7b-chat-hf"},
      {"llama2-70b", "Llama-2-70b-hf", "Llama-2-7b-chat-hf"},
      {"qwen2-7b", "Qwen2-7B-Instruct", "Qwen2-7B-Instruct"},
      {"qwen2-72b", "Qwen2-72B-Instruct", "Qwen2-7B-Instruct"},
      {"mixtral-8x7b", "Mixtral-8x7B-Instruct-v0.1", "Mixtral-8x7B-Instruct-v0.1"},
  };
  return kPresets;
}

std::optional<PresetInfo> find_preset(const std::string& model_path) {
  if (!model_path.starts_with(kPrefix)) return std::nullopt;
  const std::string name = model_path.substr(kPrefix.size());
  std::string known;
  for (const auto& p : preset_list()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  NF_THROW(kInvalidInput) << "unknown model preset '" << name << "' (known: " << known << ")";
}

ResolvedPreset resolve_preset(const PresetInfo& preset) {
  namespace fs = std::filesystem;
  std::string searched;
  for (const auto& dir : models_dirs()) {
    const fs::path cfg = fs::path(dir) / preset.config_folder / "config.json";
    searched += (searched.empty() ? "" : ", ") + cfg.string();
    std::error_code ec;
    if (!fs::is_regular_file(cfg, ec)) continue;
    ResolvedPreset r;
    r.info = preset;
    r.config = parse_hf_config(read_text_file(cfg.string()), cfg.string());
    r.config.name = "preset:" + preset.name;
    r.config.validate(cfg.string());
    const fs::path tok = fs::path(dir) / preset.tokenizer_folder;
    if (fs::is_regular_file(tok / "tokenizer.json", ec)) r.tokenizer_dir = tok.string();
    return r;
  }
  NF_THROW(kNotFound) << "preset '" << preset.name << "' needs its config.json; searched " << searched
                      << " (set NANOFLOW_MODELS_DIR to the folder holding " << preset.config_folder << "/)";
}

}  // namespace nanoflow
