// `nanoflow serve`: the OpenAI-compatible server on one model.
//
// Signals: the first SIGTERM/SIGINT drains (/ready -> 503, new requests -> 503, requests in flight
// finish, bounded by --drain-timeout) and the process exits 0; a second one exits at once (status 1).
#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "command.h"
#include "core/log.h"
#include "server/chat_renderer.h"
#include "server/server.h"

namespace nanoflow::cli {
namespace {

struct ServeOptions {
  EngineConfig engine;
  ServerConfig server;
  double drain_timeout_s = 30;
  bool no_prefix_caching = false;
};

std::string default_model_name(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  std::string name = std::filesystem::path(p).filename().string();
  return name.empty() ? p : name;
}

// Signals: the handler only counts and writes a byte to a pipe (async-signal-safe); a watcher
// thread does the draining. A handler (not a blocked mask + sigwait) because libraries start
// threads before main (OpenBLAS) whose masks we do not control.
int g_signal_pipe[2] = {-1, -1};
std::atomic<int> g_signals{0};
std::atomic<bool> g_serve_returned{false};

void on_signal(int) {
  if (g_signals.fetch_add(1) >= 1) _exit(1);  // second signal: exit now
  char c = 1;
  ssize_t ignored = write(g_signal_pipe[1], &c, 1);
  (void)ignored;
}

int run_serve(ServeOptions o) {
  NF_CHECK(pipe(g_signal_pipe) == 0) << "pipe()";
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // a client that hung up must not kill the server

  o.engine.enable_prefix_caching = !o.no_prefix_caching;
  if (o.server.served_model_name.empty()) o.server.served_model_name = default_model_name(o.engine.model_path);
  if (o.server.http_threads <= 0)
    o.server.http_threads = o.engine.max_running + o.engine.max_queued + 32;
  o.server.version = NANOFLOW_VERSION;

  NF_LOG(kInfo) << "loading " << o.engine.model_path;
  std::unique_ptr<Engine> engine = Engine::create(o.engine);
  Server server(*engine, o.server, make_chat_renderer(engine->tokenizer()));
  int port = server.bind();

  // Joined below: it wakes either on a signal or on the byte written after serve() returns.
  std::thread watcher([&server, drain_timeout_s = o.drain_timeout_s] {
    char c = 0;
    while (read(g_signal_pipe[0], &c, 1) < 0 && errno == EINTR) {
    }
    if (c != 1) return;  // serve() ended by itself
    NF_LOG(kInfo) << "signal: draining (a second signal exits at once)";
    server.begin_drain();
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(static_cast<int64_t>(drain_timeout_s * 1000));
    while (server.in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (server.in_flight() > 0) {
      NF_LOG(kWarn) << server.in_flight() << " requests still running after the drain timeout; aborting them";
    }
    // Repeated: a stop() that lands before listen() started would otherwise be lost.
    while (!g_serve_returned) {
      server.stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });

  std::string host = o.server.host;
  std::printf("nanoflow serve: model '%s' on http://%s:%d (OpenAI API at /v1)\n",
              o.server.served_model_name.c_str(), host.c_str(), port);
  std::printf("try: curl http://%s:%d/v1/completions -H 'Content-Type: application/json'%s -d "
              "'{\"prompt\": \"The capital of France is\", \"max_tokens\": 16}'\n",
              host.c_str(), port, o.server.api_key.empty() ? "" : " -H 'Authorization: Bearer $NANOFLOW_API_KEY'");
  std::fflush(stdout);
  server.serve();
  g_serve_returned = true;
  if (g_signals.load() == 0) {
    char c = 2;
    ssize_t ignored = write(g_signal_pipe[1], &c, 1);
    (void)ignored;
  }
  watcher.join();
  engine->shutdown(/*drain=*/false);
  NF_LOG(kInfo) << "server stopped";
  return 0;
}

NF_REGISTER_COMMAND(serve_command, "serve", "OpenAI-compatible HTTP server", [](CLI::App* sub) {
  auto o = std::make_shared<ServeOptions>();
  sub->add_option("--model,-m", o->engine.model_path, "HF folder or .gguf file")->required();
  sub->add_option("--host", o->server.host, "address to bind (loopback by default)")->capture_default_str();
  sub->add_option("--port", o->server.port, "TCP port (0 = any free port)")->capture_default_str();
  sub->add_option("--api-key", o->server.api_key, "require 'Authorization: Bearer KEY' on every route but /health")
      ->envname("NANOFLOW_API_KEY");
  sub->add_option("--served-model-name", o->server.served_model_name, "model id (default: the model's file/folder name)");
  sub->add_option("--allowed-origins", o->server.allowed_origins, "CORS allow-list (comma-separated; '*' = any)")
      ->delimiter(',');
  sub->add_option("--max-model-len", o->engine.max_model_len, "context length (0 = the model's)")->capture_default_str();
  sub->add_option("--max-running", o->engine.max_running, "sequences in the running set")->capture_default_str();
  sub->add_option("--max-queued", o->engine.max_queued, "waiting requests before 429")->capture_default_str();
  sub->add_option("--max-batch-tokens", o->engine.max_batch_tokens, "token budget per iteration")->capture_default_str();
  sub->add_option("--backend", o->engine.backend, "cpu | cuda")->capture_default_str();
  sub->add_option("--threads", o->engine.num_threads, "CPU backend threads (0 = all cores)")->capture_default_str();
  sub->add_option("--kv-cache-bytes", o->engine.kv_cache_bytes, "KV cache size in bytes")->capture_default_str();
  sub->add_option("--gpu-memory-utilization", o->engine.gpu_memory_utilization,
                  "CUDA: cap the GPU's used memory at this fraction when sizing the KV pool (0 = all but 1 GiB)")
      ->capture_default_str();
  sub->add_option("--schedule", o->engine.schedule_path,
                  "CUDA: pipeline schedule JSON (nanoflow schedule / tune); default the sequential one");
  sub->add_option("--num-kv-pages", o->engine.num_kv_pages, "KV pages (overrides --kv-cache-bytes)")->capture_default_str();
  sub->add_flag("--no-prefix-caching", o->no_prefix_caching, "disable the prefix cache");
  sub->add_option("--max-body-bytes", o->server.max_body_bytes, "larger request bodies get 413")->capture_default_str();
  sub->add_option("--http-threads", o->server.http_threads, "HTTP worker threads (0 = max-running + max-queued + 32)")
      ->capture_default_str();
  sub->add_option("--drain-timeout", o->drain_timeout_s, "seconds in-flight requests get after SIGTERM")->capture_default_str();
  return [o] { return run_serve(*o); };
});

}  // namespace
}  // namespace nanoflow::cli
