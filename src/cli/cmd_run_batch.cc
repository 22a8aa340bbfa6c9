// `nanoflow run-batch -i in.jsonl -o out.jsonl --model M`: an offline job in the OpenAI Batch file
// format.
//
// Input: one JSON object per line {custom_id, method: "POST", url: "/v1/completions" |
// "/v1/chat/completions", body}. Output: one line per input line, in completion order:
//   {"id": "batch_req_…", "custom_id": …, "response": {"status_code", "request_id", "body"}, "error": null}
// A request the API would refuse gets its status code and the OpenAI error envelope as body; a
// line that is not a request at all (bad JSON, missing custom_id, unknown url…) gets
// "response": null and "error": {"code", "message", "line"} (custom_id null when it had none).
// The job goes on after either.
//
// Resumable: lines whose custom_id (or, for id-less bad lines, whose line number) already has an
// entry in the output file are skipped; new entries are appended and flushed one line at a time,
// and a torn last line (the process was killed mid-write) is cut off first.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "command.h"
#include "core/error.h"
#include "core/log.h"
#include "engine/openai_request.h"
#include "server/chat_renderer.h"
#include "server/generation.h"
#include "server/http_error.h"

namespace nanoflow::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct RunBatchOptions {
  EngineConfig engine;
  std::string input, output;
  std::string model_name;
  bool no_prefix_caching = false;
  bool progress = true;
  int32_t max_in_flight = 0;  // 0 = max_running + max_queued
};

struct Line {
  int64_t number = 0;  // 1-based
  std::string text;
};

std::string random_hex(int digits) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < digits; ++i) s += kHex[rng() % 16];
  return s;
}

// What is already done: custom_ids with an entry, and line numbers of id-less error entries.
struct Done {
  std::set<std::string> ids;
  std::set<int64_t> lines;
};

Done read_done_and_repair(const std::string& path) {
  Done d;
  if (!std::filesystem::exists(path)) return d;
  std::string text;
  {
    std::ifstream f(path, std::ios::binary);
    NF_CHECK_KIND(ErrorKind::kIo, f.good()) << "cannot read " << path;
    std::ostringstream ss;
    ss << f.rdbuf();
    text = ss.str();
  }
  // A torn last line: cut it (its request is redone).
  if (!text.empty() && text.back() != '\n') {
    const size_t keep = text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1;
    std::filesystem::resize_file(path, keep);
    NF_LOG(kWarn) << path << ": dropped a torn last line (" << text.size() - keep << " bytes)";
    text.resize(keep);
  }
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    if (j.contains("custom_id") && j["custom_id"].is_string()) d.ids.insert(j["custom_id"].get<std::string>());
    else if (j.contains("error") && j["error"].is_object() && j["error"].contains("line") && j["error"]["line"].is_number_integer())
      d.lines.insert(j["error"]["line"].get<int64_t>());
  }
  return d;
}

class Progress {
 public:
  Progress(int64_t total, bool on) : total_(total), on_(on && total > 0), start_(Clock::now()) {}
  void restart() { start_ = Clock::now(); }  // rates count from here (after the model loaded)
  void update(int64_t done, int64_t tokens, bool force = false) {
    if (!on_) return;
    const auto now = Clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(200)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double tps = secs > 0 ? static_cast<double>(tokens) / secs : 0.0;
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / std::max<int64_t>(total_, 1));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r[%s] %lld/%lld | %.1f tok/s | ETA %02d:%02d ", bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), tps, static_cast<int>(eta) / 60, static_cast<int>(eta) % 60);
    if (done == total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  int64_t total_;
  bool on_;
  Clock::time_point start_, last_{};
};

class OutputFile {
 public:
  explicit OutputFile(const std::string& path) : f_(std::fopen(path.c_str(), "ab")) {
    NF_CHECK_KIND(ErrorKind::kIo, f_ != nullptr) << "cannot open " << path << " for appending";
  }
  ~OutputFile() {
    if (f_) std::fclose(f_);
  }
  void write(const json& entry) {
    const std::string s = entry.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    NF_CHECK_KIND(ErrorKind::kIo, std::fwrite(s.data(), 1, s.size(), f_) == s.size() && std::fflush(f_) == 0)
        << "write failed";
  }

 private:
  std::FILE* f_;
};

json line_error(int64_t line, const json& custom_id, const std::string& code, const std::string& message) {
  return json{{"id", "batch_req_" + random_hex(24)},
              {"custom_id", custom_id},
              {"response", nullptr},
              {"error", {{"code", code}, {"message", "line " + std::to_string(line) + ": " + message}, {"line", line}}}};
}

json response_entry(const std::string& custom_id, int status, const json& body) {
  return json{{"id", "batch_req_" + random_hex(24)},
              {"custom_id", custom_id},
              {"response", {{"status_code", status}, {"request_id", random_hex(32)}, {"body", body}}},
              {"error", nullptr}};
}

json error_body(const std::exception& e, int* status) {
  const HttpError h = http_error_from(e);
  *status = h.status;
  return json::parse(error_json(h));
}

struct Job {
  std::string custom_id;
  OpenAIRequest request;
  std::vector<PreparedPrompt> prompts;
  std::unique_ptr<Generation> gen;
};

int run_batch(RunBatchOptions o) {
  o.engine.enable_prefix_caching = !o.no_prefix_caching;
  if (o.model_name.empty()) {
    std::string p = o.engine.model_path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    o.model_name = std::filesystem::path(p).filename().string();
  }
  std::vector<Line> lines;
  {
    std::ifstream in(o.input, std::ios::binary);
    NF_CHECK_KIND(ErrorKind::kNotFound, in.good()) << "cannot read " << o.input;
    std::string s;
    int64_t n = 0;
    while (std::getline(in, s)) {
      ++n;
      if (!s.empty() && s.back() == '\r') s.pop_back();
      if (s.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines are not requests
      lines.push_back({n, std::move(s)});
    }
  }
  Done done = read_done_and_repair(o.output);
  OutputFile out(o.output);

  // Structural checks first (no model needed); they decide what is left to run.
  std::vector<std::pair<int64_t, json>> todo;  // line number, parsed line
  int64_t written = 0, skipped = 0;
  std::set<std::string> seen;
  for (auto& l : lines) {
    json j = json::parse(l.text, nullptr, false);
    json cid = j.is_object() && j.contains("custom_id") ? j["custom_id"] : json();
    const bool has_id = cid.is_string() && !cid.get<std::string>().empty();
    if (has_id ? done.ids.count(cid.get<std::string>()) != 0 : done.lines.count(l.number) != 0) {
      ++skipped;
      continue;
    }
    std::string problem, code = "invalid_request";
    if (j.is_discarded()) problem = "not valid JSON", code = "invalid_json";
    else if (!j.is_object()) problem = "a request line must be a JSON object";
    else if (!has_id) problem = "'custom_id' must be a non-empty string";
    else if (seen.count(cid.get<std::string>())) problem = "duplicate custom_id '" + cid.get<std::string>() + "'";
    else if (!j.contains("method") || j["method"] != "POST") problem = "'method' must be \"POST\"";
    else if (!j.contains("url") || !j["url"].is_string() ||
             (j["url"] != "/v1/completions" && j["url"] != "/v1/chat/completions"))
      problem = "'url' must be /v1/completions or /v1/chat/completions", code = "invalid_url";
    else if (!j.contains("body") || !j["body"].is_object()) problem = "'body' must be a JSON object";
    if (!problem.empty()) {
      // A duplicate's entry would shadow the first one's on resume: report it without the id.
      const bool dup = has_id && seen.count(cid.get<std::string>());
      out.write(line_error(l.number, has_id && !dup ? cid : json(), code, problem));
      ++written;
      continue;
    }
    seen.insert(cid.get<std::string>());
    todo.push_back({l.number, std::move(j)});
  }
  // The bar counts every line of the file; lines done by an earlier run count as done.
  const int64_t total = static_cast<int64_t>(lines.size());
  if (skipped) {
    NF_LOG(kInfo) << "resuming: " << skipped << " lines already in " << o.output;
  }
  Progress progress(total, o.progress);
  progress.update(skipped + written, 0, true);
  if (todo.empty()) return 0;

  NF_LOG(kInfo) << "loading " << o.engine.model_path;
  o.engine.max_queued = std::max(o.engine.max_queued, 1);
  std::unique_ptr<Engine> engine = Engine::create(o.engine);
  const Tokenizer& tok = engine->tokenizer();
  ChatRenderer render = make_chat_renderer(tok);
  progress.restart();
  const int32_t max_in_flight = o.max_in_flight > 0 ? o.max_in_flight : o.engine.max_running + o.engine.max_queued;

  std::vector<Job> active;
  size_t next = 0;
  int64_t tokens = 0;
  const EngineStats base = engine->stats();
  while (next < todo.size() || !active.empty()) {
    // Fill the window.
    while (next < todo.size() && static_cast<int32_t>(active.size()) < max_in_flight) {
      auto& [number, j] = todo[next];
      Job job;
      job.custom_id = j["custom_id"].get<std::string>();
      try {
        const auto ep = j["url"] == "/v1/chat/completions" ? OpenAIEndpoint::kChat : OpenAIEndpoint::kCompletions;
        job.request = parse_openai_request_json(j["body"], ep);
        job.request.stream = false;
        job.prompts = prepare_prompts(job.request, tok, engine->max_model_len(), render);
        job.gen = std::make_unique<Generation>(job.request, job.prompts, tok, o.model_name, Clock::now());
        job.gen->submit(*engine);
      } catch (const Error& e) {
        // Queue full: retry this line once something finished (unless nothing is running, then
        // the line alone needs more than the queue holds).
        if (e.kind() == ErrorKind::kResource && !active.empty()) break;
        int status = 0;
        json body = error_body(e, &status);
        out.write(response_entry(job.custom_id, status, body));
        ++written;
        ++next;
        continue;
      }
      active.push_back(std::move(job));
      ++next;
    }
    // Collect what finished.
    bool any = false;
    for (size_t i = 0; i < active.size();) {
      Job& job = active[i];
      any |= job.gen->poll(std::chrono::milliseconds(0), nullptr);
      if (!job.gen->finished()) {
        ++i;
        continue;
      }
      if (job.gen->failed()) {
        out.write(response_entry(job.custom_id, 500,
                                 json{{"error", {{"message", job.gen->first_error()}, {"type", "internal_error"},
                                                 {"param", nullptr}, {"code", nullptr}}}}));
      } else {
        out.write(response_entry(job.custom_id, 200, job.gen->response()));
      }
      ++written;
      active.erase(active.begin() + static_cast<long>(i));
    }
    const EngineStats s = engine->stats();
    tokens = (s.prompt_tokens - base.prompt_tokens) + (s.generation_tokens - base.generation_tokens);
    progress.update(skipped + written, tokens);
    if (!any) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  progress.update(skipped + written, tokens, true);
  engine->shutdown(true);
  return 0;
}

[[maybe_unused]] const CommandRegistrar kRunBatch{Command{
    "run-batch", "Run an OpenAI Batch JSONL file offline (resumable)", [](CLI::App* sub) {
      auto o = std::make_shared<RunBatchOptions>();
      sub->add_option("-i,--input", o->input, "input JSONL (OpenAI Batch format)")->required();
      sub->add_option("-o,--output", o->output, "output JSONL; existing entries are kept and skipped")->required();
      sub->add_option("-m,--model", o->engine.model_path, "model: HF folder or .gguf file")->required();
      sub->add_option("--served-model-name", o->model_name, "model name in responses (default: file name)");
      sub->add_option("--max-batch-tokens", o->engine.max_batch_tokens, "token budget per iteration");
      sub->add_option("--max-running", o->engine.max_running, "sequences running at once");
      sub->add_option("--max-queued", o->engine.max_queued, "requests waiting in the engine");
      sub->add_option("--num-kv-pages", o->engine.num_kv_pages, "KV pages (0: from --kv-cache-bytes)");
      sub->add_option("--kv-cache-bytes", o->engine.kv_cache_bytes, "KV cache size in bytes");
      sub->add_option("--max-model-len", o->engine.max_model_len, "context length (0: the model's)");
      sub->add_option("--threads", o->engine.num_threads, "CPU threads (0: all cores)");
      sub->add_option("--max-in-flight", o->max_in_flight, "lines submitted at once (0: running + queued)");
      sub->add_flag("--no-prefix-caching", o->no_prefix_caching, "disable the prefix cache");
      sub->add_flag("!--no-progress", o->progress, "no progress bar on stderr");
      return [o] { return run_batch(*o); };
    }}};

}  // namespace
}  // namespace nanoflow::cli
