// tokenizer.json parsing without the file system (fuzzing, tests). Tokenizer::from_hf_folder adds
// tokenizer_config.json (bos/eos strings, chat template) on top.
#pragma once
#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace nanoflow::tok {

// Throws like from_hf_folder; `source` names the text in error messages.
std::unique_ptr<Tokenizer> tokenizer_from_json_text(const std::string& text, const std::string& source);

}  // namespace nanoflow::tok
