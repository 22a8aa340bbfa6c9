// Loads the Tokenizer of a model path: a Hugging Face folder (tokenizer.json) or a .gguf file
// (tokenizer.ggml.* metadata -> TokenizerSpec -> Tokenizer::from_spec).
#pragma once
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace nanoflow {

class GgufFile;

// Throws Error(kNotFound) when the path is neither a folder with tokenizer.json nor a .gguf file,
// kBadFile when the files are malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path);

// Reads tokenizer.ggml.* (and tokenizer.chat_template) from an opened GGUF file.
TokenizerSpec tokenizer_spec_from_gguf(const GgufFile& gguf);

}  // namespace nanoflow
