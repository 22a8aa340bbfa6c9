// `nanoflow bench tokenizer --model M --corpus FILE`: single-thread encode throughput (MB/s of
// UTF-8 input, tokens/s) over every line of a corpus. tools/tokenizer/bench_tokenizer.py runs this
// and HF `tokenizers` (single-threaded) on the same corpus side by side.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench.h"
#include "core/error.h"
#include "core/mmap.h"
#include "engine/tokenizer_loading.h"

namespace nanoflow::cli {
namespace {

struct BenchTokenizerOptions {
  std::string model;
  std::string corpus;
  int repeat = 5;
  bool jsonl = false;  // corpus lines are JSON strings (default when the file ends in .jsonl)
  bool json = false;
};

std::vector<std::string> read_lines(const std::string& path, bool jsonl) {
  std::string all = read_text_file(path, size_t{1} << 30);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < all.size()) {
    size_t nl = all.find('\n', start);
    if (nl == std::string::npos) nl = all.size();
    std::string_view line(all.data() + start, nl - start);
    start = nl + 1;
    if (jsonl) {
      auto v = nlohmann::json::parse(line, nullptr, false);
      NF_CHECK_INPUT(v.is_string()) << path << ": line " << lines.size() + 1 << " is not a JSON string";
      lines.push_back(v.get<std::string>());
    } else {
      lines.emplace_back(line);
    }
  }
  return lines;
}

// CPU time of this process: on a shared machine wall time mostly measures the neighbours.
double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

int run(const BenchTokenizerOptions& o) {
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  auto tok = load_tokenizer(o.model);
  double load_s = std::chrono::duration<double>(clock::now() - t0).count();
  bool jsonl = o.jsonl || (o.corpus.size() > 6 && o.corpus.ends_with(".jsonl"));
  auto lines = read_lines(o.corpus, jsonl);
  size_t bytes = 0;
  for (auto& l : lines) bytes += l.size();
  NF_CHECK_INPUT(bytes > 0) << o.corpus << " is empty";

  // One untimed pass first (HF's word cache warms the same way in its run).
  size_t tokens = 0;
  for (auto& l : lines) tokens += tok->encode(l, false).size();
  std::vector<double> secs, cpu_secs;
  for (int r = 0; r < std::max(1, o.repeat); ++r) {
    auto t = clock::now();
    double c = cpu_seconds();
    size_t n = 0;
    for (auto& l : lines) n += tok->encode(l, false).size();
    cpu_secs.push_back(cpu_seconds() - c);
    secs.push_back(std::chrono::duration<double>(clock::now() - t).count());
    NF_CHECK_EQ(n, tokens) << "encode is not deterministic";
  }
  std::sort(secs.begin(), secs.end());
  std::sort(cpu_secs.begin(), cpu_secs.end());
  double median = secs[secs.size() / 2];
  double cpu_median = cpu_secs[cpu_secs.size() / 2];
  double mbps = bytes / 1e6 / median;
  double cpu_mbps = bytes / 1e6 / cpu_median;
  if (o.json) {
    nlohmann::json j = {{"impl", "nanoflow"}, {"model", o.model}, {"corpus", o.corpus}, {"lines", lines.size()},
                        {"bytes", bytes}, {"tokens", tokens}, {"repeat", secs.size()}, {"median_s", median},
                        {"best_s", secs.front()}, {"mb_per_s", mbps}, {"cpu_median_s", cpu_median}, {"cpu_mb_per_s", cpu_mbps}, {"tokens_per_s", tokens / median},
                        {"load_s", load_s}};
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("model %s\ncorpus %s: %zu lines, %.2f MB, %zu tokens\n", o.model.c_str(), o.corpus.c_str(),
                lines.size(), bytes / 1e6, tokens);
    std::printf("load %.3f s; encode (1 thread, median of %zu): wall %.3f s = %.2f MB/s, %.0f tokens/s; "
                "CPU %.3f s = %.2f MB/s\n",
                load_s, secs.size(), median, mbps, tokens / median, cpu_median, cpu_mbps);
  }
  return 0;
}

std::function<int()> setup(CLI::App* app) {
  auto o = std::make_shared<BenchTokenizerOptions>();
  app->add_option("--model", o->model, "model folder (tokenizer.json) or .gguf file")->required();
  app->add_option("--corpus", o->corpus, "text file, one input per line (.jsonl: one JSON string per line)")->required();
  app->add_option("--repeat", o->repeat, "timed passes (the median is reported)");
  app->add_flag("--jsonl", o->jsonl, "corpus lines are JSON strings");
  app->add_flag("--json", o->json, "print one JSON object");
  return [o]() { return run(*o); };
}

}  // namespace

NF_REGISTER_BENCH(bench_tokenizer, "tokenizer", "single-thread tokenizer encode throughput on a corpus", setup);

}  // namespace nanoflow::cli
