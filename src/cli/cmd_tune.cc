// `nanoflow tune`: the schedule search of DESIGN.md §4 in its empirical form. For one model and
// workload (the options of `bench throughput`) it runs the offline workload once per candidate
// schedule — the sequential one first, as the baseline — each on a fresh engine (a schedule's
// partitions are made when the model loads), and writes the fastest schedule as JSON for
// `--schedule`, with a report of every candidate's total tokens/s and gain over sequential. A
// tuned schedule belongs to its (model, GPU, tensor-parallel size, token budget): the report names
// them, and the caller keeps one file per combination.
//   nanoflow tune --model preset:llama3-8b --input-len 512 --output-len 1024 --num-prompts 300
//       --candidate sequential --candidate pipeline:88:32:attn:decode -o tuned.json
// Candidates: engine/schedule_kinds.h specs, KIND[:GEMM_SMS:ATTN_SMS[:REMAINDER[:ITERATIONS]]];
// by default sequential, decode-overlap:0:24, decode-overlap-phased:96:24 and
// pipeline:88:32:attn:decode (the best of each kind measured on the H200, RESULTS runs 11-22).
// A candidate that fails (e.g. partitions larger than the device) is reported and skipped. Each
// candidate runs once, so a gain under --min-gain (default 5%: runs of the same binary on the H200
// varied by 4%, RESULTS runs 16-25) keeps the sequential schedule.
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bench_workload.h"
#include "command.h"
#include "core/error.h"
#include "engine/schedule_kinds.h"

#if defined(NANOFLOW_HAVE_CUDA)
#include "runtime/cuda/device.h"
#endif

namespace nanoflow::cli {
namespace {

struct TuneOptions : WorkloadOptions {
  std::vector<std::string> candidates;
  std::string output;     // the fastest schedule (JSON)
  double min_gain = 1.05;  // a candidate must beat sequential by this factor (one run each: noise)
};

// Removes a file when it goes out of scope, whatever happens in between.
struct RemoveOnExit {
  std::filesystem::path path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

const char* const kDefaultCandidates[] = {"sequential", "decode-overlap:0:24", "decode-overlap-phased:96:24",
                                          "pipeline:88:32:attn:decode"};

// One candidate on a fresh engine: total tokens/s of the whole workload.
nlohmann::json measure(const TuneOptions& o, const std::vector<BenchRequest>& lengths, const std::string& schedule_path,
                       int64_t* layers) {
  WorkloadOptions w = o;
  w.schedule = schedule_path;
  BenchEngine be = make_bench_engine(w);
  const ModelConfig& mc = be.engine->model_config();
  *layers = mc.num_layers;
  const OfflineRun run = run_offline(*be.engine, workload_requests(o, lengths, mc.vocab_size));
  const EngineStats st = be.engine->stats();
  be.engine->shutdown(false);
  nlohmann::json r;
  // Each candidate's engine sizes its KV pool from the memory free when it loads: a pool much
  // smaller than the baseline's would mean the previous engine's memory was not all returned.
  r["kv_pages_total"] = st.kv_pages_total;
  r["preemptions"] = st.preemptions;
  r["total_tokens_per_s"] = run.errors == 0 ? run.total_tokens_per_s() : 0.0;
  r["wall_s"] = run.wall_s;
  r["load_s"] = be.load_s;
  if (run.errors > 0) r["error"] = std::to_string(run.errors) + " requests failed";
  return r;
}

int run_tune(const TuneOptions& o) {
  NF_CHECK_INPUT(o.schedule.empty()) << "tune chooses the schedule: drop --schedule";
  std::vector<engine::ScheduleSpec> specs;
  for (const std::string& c : o.candidates) specs.push_back(engine::parse_schedule_spec(c));
  if (specs.empty())
    for (const char* c : kDefaultCandidates) specs.push_back(engine::parse_schedule_spec(c));
  std::erase_if(specs, [](const engine::ScheduleSpec& s) { return s.kind == engine::ScheduleKind::kSequential; });
  NF_CHECK_KIND(ErrorKind::kUnsupported, o.backend == "cuda" || specs.empty())
      << "the " << o.backend << " backend runs only the sequential schedule: tune nano-batch schedules with --backend cuda";
  NF_CHECK_INPUT(o.min_gain >= 1.0) << "--min-gain " << o.min_gain << " (>= 1)";
  for (const engine::ScheduleSpec& sp : specs) (void)engine::make_schedule(sp, 1);  // a bad spec fails before any run
  {
    const bool existed = std::filesystem::exists(o.output);
    std::ofstream probe(o.output, std::ios::app);  // and so does an output that cannot be written
    NF_CHECK_INPUT(static_cast<bool>(probe)) << "cannot write " << o.output;
    probe.close();
    std::error_code ec;
    if (!existed) std::filesystem::remove(o.output, ec);
  }
  const std::vector<BenchRequest> lengths = workload_lengths(o);

  nlohmann::json res;
  res["model"] = o.model;
  res["backend"] = o.backend;
  std::string device = o.backend;
#if defined(NANOFLOW_HAVE_CUDA)
  if (o.backend == "cuda") device = cuda::device_info(0).name;
#endif
  res["device"] = device;
  res["tensor_parallel"] = 1;
  res["max_batch_tokens"] = o.max_batch_tokens;
  res["max_running"] = o.max_running;
  res["min_gain"] = o.min_gain;
  res["workload"] = o.dataset.empty() ? std::to_string(o.input_len) + "/" + std::to_string(o.output_len) : o.dataset;
  res["num_requests"] = lengths.size();

  // The baseline, which also tells the layer count the candidates are written for.
  int64_t layers = 0;
  nlohmann::json base = measure(o, lengths, "", &layers);
  NF_CHECK_INPUT(!base.contains("error")) << "the sequential baseline failed: " << base["error"].get<std::string>();
  const double base_tps = base["total_tokens_per_s"].get<double>();
  base["name"] = "sequential";
  base["kind"] = engine::schedule_kind_name(engine::ScheduleKind::kSequential);
  base["gain_vs_sequential"] = 1.0;
  std::fprintf(stderr, "tune: %-40s %10.0f tok/s\n", "sequential", base_tps);
  res["candidates"].push_back(base);
  res["num_layers"] = layers;
  engine::PipelineSchedule best = engine::sequential_schedule(static_cast<int32_t>(layers));
  double best_tps = base_tps;

  // Each candidate's file sits next to the output (not a guessable name in a shared folder).
  const RemoveOnExit tmp{std::filesystem::path(o.output + ".candidate." + std::to_string(::getpid()) + ".json")};
  for (const engine::ScheduleSpec& sp : specs) {
    const engine::PipelineSchedule s = engine::make_schedule(sp, static_cast<int32_t>(layers));
    nlohmann::json r;
    try {
      engine::write_schedule_file(s, tmp.path.string());
      int64_t unused = 0;
      r = measure(o, lengths, tmp.path.string(), &unused);
    } catch (const std::exception& e) {  // e.g. partitions the device cannot make: reported, not fatal
      r["total_tokens_per_s"] = 0.0;
      r["error"] = e.what();
    }
    r["name"] = s.name;
    r["kind"] = engine::schedule_kind_name(sp.kind);
    const double tps = r["total_tokens_per_s"].get<double>();
    r["gain_vs_sequential"] = tps / base_tps;
    std::fprintf(stderr, "tune: %-40s %10.0f tok/s  %.3fx%s%s\n", s.name.c_str(), tps, tps / base_tps,
                 r.contains("error") ? "  error: " : "", r.contains("error") ? r["error"].get<std::string>().c_str() : "");
    if (!r.contains("error") && tps > best_tps && tps >= o.min_gain * base_tps) {
      best_tps = tps;
      best = s;
    }
    res["candidates"].push_back(std::move(r));
  }

  res["best"] = best.name;
  res["best_gain_vs_sequential"] = best_tps / base_tps;
  engine::write_schedule_file(best, o.output);
  res["output"] = o.output;
  const std::string text = res.dump(2);
  std::printf("%s\n", text.c_str());
  write_output_json(o, text);
  return 0;
}

NF_REGISTER_COMMAND(tune_cmd, "tune", "measure candidate pipeline schedules on a workload and write the fastest",
                    [](CLI::App* sub) -> std::function<int()> {
                      auto o = std::make_shared<TuneOptions>();
                      add_workload_options(sub, o.get());
                      sub->add_option("--candidate", o->candidates,
                                      "KIND[:GEMM_SMS:ATTN_SMS[:REMAINDER[:ITERATIONS]]] (repeatable; default: one "
                                      "of each kind); the sequential baseline always runs first");
                      sub->add_option("-o,--output", o->output, "write the fastest schedule (JSON) here")->required();
                      sub->add_option("--min-gain", o->min_gain,
                                      "a candidate replaces sequential only if it is this many times faster (default "
                                      "1.05: each runs once, and runs of one binary varied by 4% on the H200)");
                      return [o] { return run_tune(*o); };
                    });

}  // namespace
}  // namespace nanoflow::cli
