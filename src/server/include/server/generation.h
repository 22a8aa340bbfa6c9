// One generation request as the HTTP layer sees it: the engine handles of its prompts, per-choice
// output state, and the OpenAI response objects (final JSON or SSE chunks) built from TokenEvents.
// No HTTP here, so it is unit-testable with a fake engine.
//
// Choices: prompt p's choice i (of n) is choice index p * n + i, as the OpenAI API numbers them.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/openai_request.h"
#include "nanoflow/engine.h"

namespace nanoflow {

struct ChoiceState {
  std::string text;               // output so far (non-streaming keeps all of it)
  nlohmann::json logprobs;        // accumulated logprobs object (non-streaming), null if none
  FinishReason finish = FinishReason::kNone;
  std::string error;
  int32_t completion_tokens = 0;  // tokens received
  int32_t reported_tokens = -1;   // completion_tokens of the final event, if any
  int32_t cached_tokens = 0;      // prompt tokens served by the prefix cache (final event)
  bool started = false;           // role / echo chunk already streamed
  int32_t text_offset = 0;        // completions logprobs text_offset of the next token
};

struct GenerationTiming {
  std::chrono::steady_clock::time_point arrival;
  std::chrono::steady_clock::time_point first_token;  // of any choice
  std::chrono::steady_clock::time_point last_token;
  bool has_token = false;
};

class Generation {
 public:
  // `prompts` were prepared by prepare_prompts; submit() sends them to the engine.
  Generation(const OpenAIRequest& request, std::vector<PreparedPrompt> prompts,
             const Tokenizer& tokenizer, std::string model_name,
             std::chrono::steady_clock::time_point arrival);
  ~Generation();  // aborts whatever is still running

  // Submits every prompt; on failure aborts the ones already submitted and rethrows.
  void submit(Engine& engine);
  void abort();
  bool finished() const;   // every choice has its finish event
  bool failed() const;     // some choice finished with kError
  std::string first_error() const;

  // Waits up to `timeout` for events and applies them. Streaming: appends SSE "data: ..\n\n"
  // chunks for them to *sse (and the role/echo chunks first). Returns true if any event came.
  bool poll(std::chrono::milliseconds timeout, std::string* sse);
  // Streaming tail after finished(): the usage chunk if asked, then "data: [DONE]".
  std::string stream_tail() const;
  // Streaming error event (then [DONE]) for a failure after the stream began.
  static std::string stream_error(const std::string& error_json);
  // Non-streaming response body (valid after finished()).
  nlohmann::json response() const;

  nlohmann::json usage() const;
  const GenerationTiming& timing() const { return timing_; }
  const std::vector<ChoiceState>& choices() const { return choices_; }
  int32_t prompt_tokens() const;

 private:
  nlohmann::json chunk_base() const;
  std::string sse(const nlohmann::json& chunk) const;
  void start_stream(std::string* sse);
  void apply(size_t prompt_index, const TokenEvent& ev, std::string* sse);
  nlohmann::json logprobs_delta(const std::vector<TokenOutput>& tokens, ChoiceState& c) const;
  void append_logprobs(ChoiceState& c, const nlohmann::json& delta) const;

  OpenAIRequest request_;
  std::vector<PreparedPrompt> prompts_;
  const Tokenizer& tokenizer_;
  std::string model_;
  std::string id_;
  int64_t created_ = 0;
  bool chat_ = false;
  int32_t n_ = 1;
  std::vector<std::shared_ptr<RequestHandle>> handles_;  // one per prompt
  std::vector<ChoiceState> choices_;
  GenerationTiming timing_;
  bool stream_started_ = false;
  size_t next_poll_ = 0;  // round-robin start over handles_
};

std::string make_request_id(const char* prefix);  // "cmpl-" / "chatcmpl-" + 24 random hex digits

}  // namespace nanoflow
