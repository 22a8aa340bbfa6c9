// OpenAI request bodies (/v1/completions, /v1/chat/completions) -> validated fields and
// SamplingParams. Shared by `nanoflow serve` and `nanoflow run-batch`; no HTTP here.
//
// Rules (../shared/RELIABILITY.md "API validation"): every bad value is a RequestError naming the
// parameter (the server turns it into a 400/404 OpenAI error envelope); values are rejected, never
// clamped; counts are capped before anything is allocated in proportion to them.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "nanoflow/engine.h"

namespace nanoflow {

// A request the client got wrong. kind: kInvalidInput (400) or kNotFound (404). param: the
// offending field as OpenAI's error.param ("" when none applies).
class RequestError : public Error {
 public:
  RequestError(ErrorKind kind, std::string param, const std::string& message)
      : Error(kind, message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

enum class OpenAIEndpoint : uint8_t { kCompletions, kChat };

// Caps that keep a hostile request cheap to refuse.
struct OpenAILimits {
  int32_t max_n = 16;              // choices per prompt
  int32_t max_choices = 64;        // prompts x n in one completions request
  int32_t max_logprobs = 20;       // logprobs / top_logprobs
  size_t max_stop = 64;            // stop strings
  size_t max_stop_bytes = 1024;    // bytes of one stop string
  size_t max_stop_token_ids = 256;
  size_t max_logit_bias = 1024;    // entries
  size_t max_messages = 4096;      // chat messages
};

// One completions prompt: text, or token ids when the client sent integers.
struct PromptInput {
  bool is_tokens = false;
  std::string text;
  std::vector<int32_t> ids;
};

struct OpenAIRequest {
  OpenAIEndpoint endpoint = OpenAIEndpoint::kCompletions;
  std::string model;                  // "" when absent
  std::vector<PromptInput> prompts;   // completions: >= 1 prompt
  nlohmann::json messages;            // chat: [{role, content: string}], content parts flattened
  bool add_generation_prompt = true;  // chat
  SamplingParams params;              // params.max_tokens valid only when max_tokens_set
  bool max_tokens_set = false;        // unset: completions 16, chat the rest of the context
  bool stream = false;
  bool include_usage = false;         // stream_options.include_usage
  bool echo = false;                  // completions: prompt text before the completion
  bool skip_special_tokens = true;
  std::string user;
};

// Parses `body` (JSON text) for `endpoint`. Throws RequestError (never another exception type) for
// malformed JSON, invalid UTF-8, wrong types and out-of-range values. The model name is returned,
// not checked: whether it exists is the caller's business (404 param "model").
OpenAIRequest parse_openai_request(std::string_view body, OpenAIEndpoint endpoint,
                                   const OpenAILimits& limits = {});
OpenAIRequest parse_openai_request_json(const nlohmann::json& body, OpenAIEndpoint endpoint,
                                   const OpenAILimits& limits = {});

// Renders chat messages to prompt text (the model's chat template); supplied by the caller.
using ChatRenderer =
    std::function<std::string(const nlohmann::json& messages, bool add_generation_prompt)>;

// One engine request per prompt, tokenized and checked against the context:
//   prompt tokens >= max_model_len            -> 400 naming both counts (param prompt/messages)
//   prompt tokens + max_tokens > max_model_len -> 400 param max_tokens
//   token id < 0 or >= vocab                   -> 400 param prompt
// Chat prompts are rendered with `render_chat` and tokenized without added special tokens (the
// template writes them), completions prompts with them, as Hugging Face does.
struct PreparedPrompt {
  GenerateRequest request;
  std::string prompt_text;  // for echo (decoded when the prompt came as ids)
};
std::vector<PreparedPrompt> prepare_prompts(const OpenAIRequest& req, const Tokenizer& tokenizer,
                                            int32_t max_model_len, const ChatRenderer& render_chat);

}  // namespace nanoflow
