// Reading just the configuration of a model path (no weights needed): a folder with config.json
// (weights optional, e.g. ../shared/models/*), or a .gguf file (its metadata).
#pragma once
#include <string>

#include "loader/gguf.h"
#include "loader/model_config.h"

namespace nanoflow {

bool is_gguf_path(const std::string& path);  // by extension
ModelConfig read_model_config(const std::string& path);
// ModelConfig from GGUF metadata (llama.* / qwen2.* keys, general.architecture). Tensor shapes
// fill what the metadata omits (vocab from token_embd rows, tied embeddings when output.weight is
// absent). Validated; throws kBadFile naming the file.
ModelConfig gguf_model_config(const GgufFile& f);

}  // namespace nanoflow
