// nanoflow's public engine API: submit requests, read a stream of token events, abort, stats.
// No HTTP here (DESIGN.md §2: server and cli use only this header and the tokenizer interface).
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "loader/model_config.h"
#include "tokenizer/tokenizer.h"

namespace nanoflow {

class Model;  // model/model.h

struct SamplingParams {
  float temperature = 1.0f;         // 0 = greedy
  float top_p = 1.0f;               // (0, 1]
  int32_t top_k = 0;                // 0 or -1 = off
  float min_p = 0.0f;               // [0, 1]
  float repetition_penalty = 1.0f;  // > 0; 1 = off
  float frequency_penalty = 0.0f;   // [-2, 2]
  float presence_penalty = 0.0f;    // [-2, 2]
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;     // same seed -> same output, in or out of a batch
  std::vector<std::string> stop;    // stop strings, excluded from the output
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t max_tokens = 16;
  int32_t min_tokens = 0;
  int32_t logprobs = -1;            // -1: none; k >= 0: chosen token's logprob + top-k alternatives
  int32_t n = 1;                    // choices sharing the prompt's KV pages
};

enum class FinishReason : uint8_t { kNone, kStop, kLength, kAbort, kError };
const char* finish_reason_name(FinishReason r);  // "stop", "length", "abort", "error", null for kNone

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0.0f;
};
struct TokenOutput {
  int32_t token = 0;
  float logprob = 0.0f;                 // valid when logprobs were requested
  std::vector<TokenLogprob> top;        // top_logprobs alternatives, best first
};

// One event of a request's stream. Events of one choice arrive in order; the last one of each
// choice has finish != kNone.
struct TokenEvent {
  int32_t index = 0;                    // choice index in [0, n)
  std::vector<TokenOutput> tokens;      // tokens produced since the last event
  std::string text;                     // text that became final since the last event
  FinishReason finish = FinishReason::kNone;
  std::string error;                    // set when finish == kError
  // Filled on the last event of each choice:
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;        // this choice's tokens
  int32_t cached_tokens = 0;            // prompt tokens served from the prefix cache
};

struct GenerateRequest {
  std::vector<int32_t> prompt_ids;
  SamplingParams params;
};

// The consumer side of a request's output channel. Thread-safe.
class RequestHandle {
 public:
  virtual ~RequestHandle() = default;
  virtual uint64_t id() const = 0;
  // Blocks up to `timeout` for the next event; false on timeout or when the stream has ended
  // (check done()).
  virtual bool next(TokenEvent* event, std::chrono::milliseconds timeout) = 0;
  virtual bool done() const = 0;  // all choices finished and every event consumed
  // Aborts the request (e.g. the client went away); pages are freed within one iteration.
  virtual void abort() = 0;
};

struct EngineConfig {
  std::string model_path;           // HF folder, .gguf file, or "preset:<name>"
  std::string backend = "cpu";      // "cpu" | "cuda"
  int num_threads = 0;              // CPU backend; 0 = all cores
  int32_t max_batch_tokens = 512;   // token budget per iteration
  int32_t max_running = 64;         // sequences in the running set
  int32_t max_queued = 256;         // waiting requests before submit() refuses
  int64_t num_kv_pages = 0;         // 0 = derive from kv_cache_bytes
  int64_t kv_cache_bytes = int64_t{512} << 20;
  double gpu_memory_utilization = 0.0;  // CUDA: > 0 caps the device's used memory at this fraction of
                                        // its total when the KV pool is sized (vLLM's flag); 0 = every
                                        // byte left after weights and workspaces minus a 1 GiB margin
  int32_t max_model_len = 0;        // 0 = model's max_position_embeddings
  std::string schedule_path;        // CUDA: a pipeline schedule (JSON, tools/schedules/); "" = sequential
  bool enable_prefix_caching = true;
  uint64_t prefix_hash_seed = 0;    // 0 = random at start-up
};

struct EngineStats {
  int64_t running = 0, waiting = 0;
  int64_t kv_pages_total = 0, kv_pages_used = 0, kv_pages_free = 0;
  int64_t prefix_queries = 0, prefix_hits = 0;  // in tokens
  int64_t preemptions = 0;
  int64_t iterations = 0;
  int64_t prompt_tokens = 0, generation_tokens = 0;
  int64_t finished_stop = 0, finished_length = 0, finished_abort = 0, finished_error = 0;
  int64_t live_requests = 0;                    // submitted and not yet fully consumed/finished
  int64_t host_ns = 0;   // engine-thread time planning + post-processing (not waiting on the executor)
  int64_t kv_evictions = 0;                     // cached prefix pages evicted
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Loads the model and starts the engine thread. Throws Error on a bad model or config.
  static std::unique_ptr<Engine> create(const EngineConfig& config);
  // From an already built model and tokenizer (tests with fakes, other front ends). The model's
  // KV pool size wins over config.num_kv_pages / kv_cache_bytes; config.model_path is ignored.
  static std::unique_ptr<Engine> create(std::unique_ptr<Model> model, std::unique_ptr<Tokenizer> tokenizer,
                                        const EngineConfig& config);

  // Thread-safe. Throws Error(kInvalidInput) for a request that can never run (prompt too long,
  // needs more KV than the pool) and Error(kResource) when the queue is full.
  virtual std::shared_ptr<RequestHandle> submit(GenerateRequest request) = 0;
  virtual EngineStats stats() const = 0;
  virtual const ModelConfig& model_config() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual int32_t max_model_len() const = 0;
  // Stops admitting; when drain, waits for in-flight requests to finish, else aborts them.
  virtual void shutdown(bool drain) = 0;
};

}  // namespace nanoflow
