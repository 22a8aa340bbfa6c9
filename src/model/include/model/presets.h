// Random-weight presets with real shapes: `--model preset:<name>` (DESIGN.md §5, PERF.md). The shape
// is the model's real Hugging Face config.json, read at load time from a models folder (the team's
// ../shared/models layout: one folder per model holding config.json and, when available,
// tokenizer.json); weights are never read — the CUDA model initializes them on the GPU.
//
// Models folder search order: $NANOFLOW_MODELS_DIR, ./shared/models, ../shared/models, and
// the compiled-in NF_DEFAULT_MODELS_DIR when set.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "loader/model_config.h"

namespace nanoflow {

struct PresetInfo {
  std::string name;              // "llama3-8b"
  std::string config_folder;     // folder holding the real config.json
  std::string tokenizer_folder;  // folder whose tokenizer.json matches the vocabulary
};

// The known presets, in a fixed order (help texts, tests).
const std::vector<PresetInfo>& preset_list();
// "preset:<name>" -> its entry; nullopt when `model_path` is not a preset path.
// Throws Error(kInvalidInput) for "preset:<unknown>" naming the known ones.
std::optional<PresetInfo> find_preset(const std::string& model_path);

struct ResolvedPreset {
  PresetInfo info;
  ModelConfig config;           // parsed from the real config.json (name = "preset:<name>")
  std::string tokenizer_dir;    // folder with tokenizer.json, or empty when none is present
};
// Finds the models folder and parses the config. Throws Error(kNotFound) naming the folders it
// searched when the config.json is absent.
ResolvedPreset resolve_preset(const PresetInfo& preset);

}  // namespace nanoflow
