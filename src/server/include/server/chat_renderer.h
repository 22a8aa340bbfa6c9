// The model's chat template as a ChatRenderer for prepare_prompts (engine/openai_request.h).
#pragma once
#include "engine/openai_request.h"
#include "tokenizer/tokenizer.h"

namespace nanoflow {

// Compiles tokenizer.chat_template() once. Returns an empty renderer (chat requests -> 400) when
// the model has no template or it cannot be compiled (logged). Render errors and template limits
// come out as Error(kInvalidInput), i.e. HTTP 400.
ChatRenderer make_chat_renderer(const Tokenizer& tokenizer);

}  // namespace nanoflow
