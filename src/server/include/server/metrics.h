// Prometheus metrics of the server (text exposition format 0.0.4): HTTP requests by route and
// status, latency histograms (TTFT, TPOT, end to end), and the engine's gauges read from
// Engine::stats() at scrape time (running/waiting, KV pages, prefix-cache hits, preemptions,
// tokens), plus process threads/fds/RSS so leaks show in a soak.
#pragma once
#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "nanoflow/engine.h"

namespace nanoflow {

// Cumulative histogram with fixed upper bounds (seconds); thread-safe through ServerMetrics.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  // Appends "<name>_bucket{le=..} n", "_sum", "_count" lines.
  void render(const std::string& name, std::string* out) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // [bounds_.size() + 1], last = +Inf overflow
  double sum_ = 0;
  uint64_t count_ = 0;
};

struct ProcessStats {
  int64_t threads = 0;
  int64_t open_fds = 0;
  int64_t rss_bytes = 0;
};
ProcessStats read_process_stats();  // from /proc/self; zeros where unavailable

class ServerMetrics {
 public:
  ServerMetrics();
  void record_http(const std::string& route, int status);
  void observe_request(double ttft_s, double tpot_s, double e2e_s, bool has_tokens);
  void record_finish(const char* reason);
  // The whole exposition; `http_in_flight` is the server's count of generation handlers.
  std::string render(const EngineStats& stats, int64_t http_in_flight, bool ready);

 private:
  std::mutex mu_;
  std::map<std::pair<std::string, int>, uint64_t> http_;  // (route, status) -> count
  std::map<std::string, uint64_t> finished_;              // finish_reason -> count
  Histogram ttft_, tpot_, e2e_;
  std::chrono::steady_clock::time_point start_;
  // Tokens/s over the interval between two scrapes (and since start for the first one).
  std::chrono::steady_clock::time_point last_scrape_;
  int64_t last_generation_tokens_ = 0;
  double last_rate_ = 0;
};

}  // namespace nanoflow
