// `nanoflow serve`: the OpenAI-compatible HTTP server (../shared/RELIABILITY.md), on cpp-httplib.
// Uses only the public engine API (include/nanoflow/engine.h) and the shared request parser.
//
// Threads: cpp-httplib's fixed pool of HTTP workers (http_threads); each generation request holds
// one worker while it runs, polling its RequestHandle with a short timeout so that a client that
// goes away is noticed and its request aborted. No other threads.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/openai_request.h"
#include "nanoflow/engine.h"

namespace nanoflow {

struct ServerConfig {
  std::string host = "127.0.0.1";            // loopback unless told otherwise
  int port = 8000;                           // 0 = any free port (see Server::bind)
  std::string api_key;                       // "" = no auth; else needed on every route but /health
  std::string served_model_name;             // the one model id clients name
  std::vector<std::string> allowed_origins;  // CORS allow-list ("*" = any); empty = no CORS headers
  size_t max_body_bytes = size_t{8} << 20;   // larger bodies: 413 without reading them
  int http_threads = 0;                      // 0 = max_running + max_queued + 32 of the engine
  int keep_alive_timeout_s = 5;
  int read_timeout_s = 30;                   // slow clients (headers/body) are cut off after this
  int retry_after_s = 1;                     // Retry-After of a 429
  std::chrono::milliseconds poll_interval{50};   // RequestHandle::next timeout of a streaming worker
  std::chrono::milliseconds ping_interval{500};  // idle streams get an SSE comment to detect hang-ups
  std::string version;                       // /version
  OpenAILimits limits;
};

class ServerMetrics;

class Server {
 public:
  // `render_chat` renders chat messages with the model's template (may be empty: chat -> 400).
  Server(Engine& engine, ServerConfig config, ChatRenderer render_chat);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds the listening socket; returns the port. Throws Error(kIo) when it cannot bind.
  int bind();
  // Serves on the bound socket until stop(); blocks the calling thread.
  void serve();
  // Draining: /ready and new generation requests answer 503; requests in flight go on.
  void begin_drain();
  bool draining() const;
  // Generation requests (HTTP handlers) in progress.
  int64_t in_flight() const;
  // Stops accepting and returns serve(); in-flight streams are aborted.
  void stop();
  const ServerConfig& config() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nanoflow
