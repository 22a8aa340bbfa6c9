#include "server/metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace nanoflow {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += v;
  ++count_;
}

void Histogram::render(const std::string& name, std::string* out) const {
  uint64_t cum = 0;
  char buf[256];
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    std::snprintf(buf, sizeof buf, "%s_bucket{le=\"%g\"} %llu\n", name.c_str(), bounds_[i],
                  static_cast<unsigned long long>(cum));
    *out += buf;
  }
  cum += counts_.back();
  std::snprintf(buf, sizeof buf, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n",
                name.c_str(), static_cast<unsigned long long>(cum), name.c_str(), sum_, name.c_str(),
                static_cast<unsigned long long>(count_));
  *out += buf;
}

ProcessStats read_process_stats() {
  ProcessStats s;
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) s.threads = std::stoll(line.substr(8));
    if (line.rfind("VmRSS:", 0) == 0) s.rss_bytes = std::stoll(line.substr(6)) * 1024;  // kB
  }
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') ++s.open_fds;
    closedir(d);
    --s.open_fds;  // the directory stream itself
  }
  return s;
}

namespace {
// Bucket bounds in seconds.
std::vector<double> ttft_bounds() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0};
}
std::vector<double> tpot_bounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5};
}
std::vector<double> e2e_bounds() {
  return {0.01, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0};
}

void line(std::string* out, const char* name, const char* type, const char* help, double v) {
  char buf[512];
  std::snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
  *out += buf;
}
}  // namespace

ServerMetrics::ServerMetrics()
    : ttft_(ttft_bounds()), tpot_(tpot_bounds()), e2e_(e2e_bounds()),
      start_(std::chrono::steady_clock::now()), last_scrape_(start_) {}

void ServerMetrics::record_http(const std::string& route, int status) {
  std::lock_guard lock(mu_);
  ++http_[{route, status}];
}

void ServerMetrics::observe_request(double ttft_s, double tpot_s, double e2e_s, bool has_tokens) {
  std::lock_guard lock(mu_);
  if (has_tokens) ttft_.observe(ttft_s);
  if (tpot_s > 0) tpot_.observe(tpot_s);
  e2e_.observe(e2e_s);
}

void ServerMetrics::record_finish(const char* reason) {
  std::lock_guard lock(mu_);
  ++finished_[reason ? reason : "none"];
}

std::string ServerMetrics::render(const EngineStats& s, int64_t http_in_flight, bool ready) {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(8192);
  out += "# HELP nanoflow_http_requests_total HTTP requests by route and status.\n"
         "# TYPE nanoflow_http_requests_total counter\n";
  for (const auto& [key, n] : http_)
    out += "nanoflow_http_requests_total{route=\"" + key.first + "\",status=\"" +
           std::to_string(key.second) + "\"} " + std::to_string(n) + "\n";
  out += "# HELP nanoflow_request_finished_total Generation choices by finish reason.\n"
         "# TYPE nanoflow_request_finished_total counter\n";
  for (const auto& [reason, n] : finished_)
    out += "nanoflow_request_finished_total{finish_reason=\"" + reason + "\"} " + std::to_string(n) + "\n";

  line(&out, "nanoflow_ready", "gauge", "1 when serving, 0 while loading or draining.", ready ? 1 : 0);
  line(&out, "nanoflow_http_in_flight", "gauge", "Generation requests the HTTP layer is serving.", static_cast<double>(http_in_flight));
  line(&out, "nanoflow_num_requests_running", "gauge", "Sequences in the engine's running set.", static_cast<double>(s.running));
  line(&out, "nanoflow_num_requests_waiting", "gauge", "Requests queued in the engine.", static_cast<double>(s.waiting));
  line(&out, "nanoflow_live_requests", "gauge", "Engine requests submitted and not yet finished.", static_cast<double>(s.live_requests));
  line(&out, "nanoflow_kv_pages_total", "gauge", "KV cache pages in the pool.", static_cast<double>(s.kv_pages_total));
  line(&out, "nanoflow_kv_pages_used", "gauge", "KV cache pages in use.", static_cast<double>(s.kv_pages_used));
  line(&out, "nanoflow_kv_pages_free", "gauge", "KV cache pages free.", static_cast<double>(s.kv_pages_free));
  line(&out, "nanoflow_kv_cache_usage_ratio", "gauge", "Used / total KV pages.",
       s.kv_pages_total ? static_cast<double>(s.kv_pages_used) / static_cast<double>(s.kv_pages_total) : 0.0);
  line(&out, "nanoflow_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.", static_cast<double>(s.prefix_queries));
  line(&out, "nanoflow_prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", static_cast<double>(s.prefix_hits));
  line(&out, "nanoflow_prefix_cache_hit_rate", "gauge", "Prefix-cache hits / queries (tokens).",
       s.prefix_queries ? static_cast<double>(s.prefix_hits) / static_cast<double>(s.prefix_queries) : 0.0);
  line(&out, "nanoflow_num_preemptions_total", "counter", "Sequences preempted for KV space.", static_cast<double>(s.preemptions));
  out += "# HELP nanoflow_engine_finished_total Engine sequences finished, by reason.\n"
         "# TYPE nanoflow_engine_finished_total counter\n";
  out += "nanoflow_engine_finished_total{reason=\"stop\"} " + std::to_string(s.finished_stop) + "\n";
  out += "nanoflow_engine_finished_total{reason=\"length\"} " + std::to_string(s.finished_length) + "\n";
  out += "nanoflow_engine_finished_total{reason=\"abort\"} " + std::to_string(s.finished_abort) + "\n";
  out += "nanoflow_engine_finished_total{reason=\"error\"} " + std::to_string(s.finished_error) + "\n";
  line(&out, "nanoflow_iterations_total", "counter", "Engine iterations.", static_cast<double>(s.iterations));
  line(&out, "nanoflow_prompt_tokens_total", "counter", "Prompt tokens processed.", static_cast<double>(s.prompt_tokens));
  line(&out, "nanoflow_generation_tokens_total", "counter", "Tokens generated.", static_cast<double>(s.generation_tokens));

  auto now = std::chrono::steady_clock::now();
  double dt = std::chrono::duration<double>(now - last_scrape_).count();
  if (dt >= 0.5) {  // a rate over a very short interval is noise; keep the previous one
    last_rate_ = static_cast<double>(s.generation_tokens - last_generation_tokens_) / dt;
    last_generation_tokens_ = s.generation_tokens;
    last_scrape_ = now;
  }
  double uptime = std::chrono::duration<double>(now - start_).count();
  line(&out, "nanoflow_generation_tokens_per_second", "gauge", "Generated tokens/s since the previous scrape.", last_rate_);
  line(&out, "nanoflow_generation_tokens_per_second_avg", "gauge", "Generated tokens/s since start.",
       uptime > 0 ? static_cast<double>(s.generation_tokens) / uptime : 0.0);
  line(&out, "nanoflow_uptime_seconds", "gauge", "Seconds since the server started.", uptime);

  out += "# HELP nanoflow_time_to_first_token_seconds Request arrival to first token.\n"
         "# TYPE nanoflow_time_to_first_token_seconds histogram\n";
  ttft_.render("nanoflow_time_to_first_token_seconds", &out);
  out += "# HELP nanoflow_time_per_output_token_seconds Mean time between output tokens of a request.\n"
         "# TYPE nanoflow_time_per_output_token_seconds histogram\n";
  tpot_.render("nanoflow_time_per_output_token_seconds", &out);
  out += "# HELP nanoflow_e2e_request_latency_seconds Request arrival to its last token.\n"
         "# TYPE nanoflow_e2e_request_latency_seconds histogram\n";
  e2e_.render("nanoflow_e2e_request_latency_seconds", &out);

  ProcessStats p = read_process_stats();
  line(&out, "process_threads", "gauge", "Threads of the process.", static_cast<double>(p.threads));
  line(&out, "process_open_fds", "gauge", "Open file descriptors.", static_cast<double>(p.open_fds));
  line(&out, "process_resident_memory_bytes", "gauge", "Resident set size.", static_cast<double>(p.rss_bytes));
  return out;
}

}  // namespace nanoflow
