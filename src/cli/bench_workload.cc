#include "bench_workload.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <sstream>

#include "core/error.h"
#include "core/log.h"
#include "core/mmap.h"
#include "engine/cuda_engine.h"

namespace nanoflow::cli {
namespace {

std::vector<BenchRequest> load_dataset(const WorkloadOptions& o, int max_len) {
  const std::string text = read_text_file(o.dataset, size_t{64} << 20);
  std::istringstream is(text);
  std::string line;
  NF_CHECK_INPUT(static_cast<bool>(std::getline(is, line))) << o.dataset << ": empty";
  // Column names: Azure traces (ContextTokens, GeneratedTokens), sarathi (num_prefill_tokens,
  // num_decode_tokens).
  std::vector<std::string> cols;
  {
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) cols.push_back(c.substr(0, c.find_last_not_of("\r ") + 1));
  }
  int ci = -1, co = -1;
  for (int i = 0; i < static_cast<int>(cols.size()); ++i) {
    if (cols[i] == "ContextTokens" || cols[i] == "num_prefill_tokens") ci = i;
    if (cols[i] == "GeneratedTokens" || cols[i] == "num_decode_tokens") co = i;
  }
  NF_CHECK_INPUT(ci >= 0 && co >= 0) << o.dataset << ": no ContextTokens/GeneratedTokens (or num_prefill_tokens/"
                                                     "num_decode_tokens) columns";
  std::vector<BenchRequest> reqs;
  int64_t row = 1;
  while (std::getline(is, line) && static_cast<int>(reqs.size()) < o.num_prompts) {
    ++row;
    if (line.empty() || line == "\r") continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    std::string c;
    while (std::getline(ss, c, ',')) f.push_back(c);
    NF_CHECK_INPUT(static_cast<int>(f.size()) > std::max(ci, co)) << o.dataset << ":" << row << ": too few fields";
    BenchRequest r;
    try {
      r.in = std::stoi(f[static_cast<size_t>(ci)]);
      r.out = std::stoi(f[static_cast<size_t>(co)]);
    } catch (const std::exception&) {
      NF_THROW(kInvalidInput) << o.dataset << ":" << row << ": bad token counts";
    }
    NF_CHECK_INPUT(r.in >= 0 && r.out >= 0) << o.dataset << ":" << row << ": negative length";
    if (o.dataset_filter && (r.in + r.out > 4096 || r.in > 3072 || r.out > 1024)) continue;
    r.in = std::max(r.in, 1);
    r.out = std::max(r.out, 1);
    if (r.in + r.out > max_len) continue;
    reqs.push_back(r);
  }
  NF_CHECK_INPUT(!reqs.empty()) << o.dataset << ": no usable request";
  return reqs;
}

}  // namespace

void add_workload_options(CLI::App* sub, WorkloadOptions* o) {
  sub->add_option("--model", o->model, "HF folder, .gguf or preset:<name>")->required();
  sub->add_option("--backend", o->backend, "cuda | cpu");
  sub->add_option("--input-len", o->input_len, "prompt tokens per request");
  sub->add_option("--output-len", o->output_len, "generated tokens per request");
  sub->add_option("--num-prompts", o->num_prompts, "requests (for --dataset: the first N usable rows)");
  sub->add_option("--dataset", o->dataset, "CSV trace of request lengths (../shared/datasets)");
  sub->add_option("--dataset-filter", o->dataset_filter, "NanoFlow's length filter (default true)");
  sub->add_option("--max-batch-tokens", o->max_batch_tokens, "tokens per iteration");
  sub->add_option("--max-running", o->max_running, "sequences in the running set");
  sub->add_option("--num-layers", o->num_layers, "keep only the first N layers (quick checks)");
  sub->add_option("--kv-margin-gib", o->kv_margin_gib, "GPU memory left free after the KV pool");
  sub->add_option("--gpu-memory-utilization", o->gpu_memory_utilization,
                  "cap the GPU's used memory at this fraction when sizing the KV pool (0 = off)");
  sub->add_option("--cuda-graphs", o->cuda_graphs,
                  "decode-only iterations as CUDA graphs per batch bucket, on | off (default on)");
  sub->add_option("--numerics", o->numerics,
                  "CUDA: fast (default) | transformers (round where transformers' eager bf16 forward rounds; slower)")
      ->check(CLI::IsMember({"fast", "transformers"}));
  sub->add_option("--schedule", o->schedule, "CUDA: pipeline schedule JSON (nanoflow schedule / tune); default the sequential one");
  sub->add_option("--temperature", o->temperature, "0 = greedy");
  sub->add_option("--seed", o->seed, "prompt and sampling seed");
  sub->add_option("--output-json", o->output_json, "also write the JSON result here");
}

int workload_max_len(const WorkloadOptions& o) {
  // A little room over in+out: the engine stops a request whose total length reaches max_model_len.
  return (o.dataset.empty() ? o.input_len + o.output_len : 4096) + 16;
}

std::vector<BenchRequest> workload_lengths(const WorkloadOptions& o) {
  if (!o.dataset.empty()) return load_dataset(o, workload_max_len(o));
  NF_CHECK_INPUT(o.input_len > 0 && o.output_len > 0 && o.num_prompts > 0)
      << "--input-len, --output-len and --num-prompts must be positive";
  return std::vector<BenchRequest>(static_cast<size_t>(o.num_prompts), BenchRequest{o.input_len, o.output_len});
}

std::vector<GenerateRequest> workload_requests(const WorkloadOptions& o, const std::vector<BenchRequest>& lengths,
                                               int64_t vocab) {
  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(std::min<int64_t>(vocab, 100000) - 1));
  std::vector<GenerateRequest> gens;
  gens.reserve(lengths.size());
  for (const BenchRequest& r : lengths) {
    GenerateRequest g;
    g.prompt_ids.resize(static_cast<size_t>(r.in));
    for (auto& t : g.prompt_ids) t = tok(rng);
    g.params.temperature = static_cast<float>(o.temperature);
    g.params.seed = rng();
    g.params.ignore_eos = true;
    g.params.max_tokens = r.out;
    gens.push_back(std::move(g));
  }
  return gens;
}

BenchEngine make_bench_engine(const WorkloadOptions& o) {
  NF_CHECK_INPUT(o.numerics == "fast" || o.backend == "cuda")
      << "--numerics " << o.numerics << " is a CUDA option (the CPU backend computes in f32)";
  EngineConfig ec;
  ec.model_path = o.model;
  ec.backend = o.backend;
  ec.max_batch_tokens = o.max_batch_tokens;
  ec.max_running = o.max_running;
  ec.gpu_memory_utilization = o.gpu_memory_utilization;
  ec.schedule_path = o.schedule;
  ec.max_queued = std::max(o.num_prompts, 1) + 16;
  ec.enable_prefix_caching = false;  // random prompts share nothing; keep the pool's accounting plain
  ec.prefix_hash_seed = 1;
  ec.max_model_len = workload_max_len(o);
  BenchEngine b;
  const auto t0 = std::chrono::steady_clock::now();
  if (o.backend == "cuda") {
#if defined(NANOFLOW_HAVE_CUDA)
    engine::CudaEngineOptions co;
    co.kv_margin_bytes = static_cast<size_t>(o.kv_margin_gib * (1 << 30));
    co.num_layers_override = o.num_layers;
    co.cuda_graphs = o.cuda_graphs;
    co.transformers_numerics = o.numerics == "transformers";
    engine::CudaEngineParts parts;
    b.engine = engine::create_cuda_engine(ec, co, &parts);
    b.cuda_model = parts.model;
    b.cuda_executor = parts.executor;
#else
    NF_THROW(kUnsupported) << "this build has no CUDA backend";
#endif
  } else {
    b.engine = Engine::create(ec);
  }
  b.load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return b;
}

OfflineRun run_offline(Engine& engine, std::vector<GenerateRequest> requests) {
  OfflineRun r;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<RequestHandle>> handles;
  handles.reserve(requests.size());
  for (auto& g : requests) handles.push_back(engine.submit(std::move(g)));
  for (auto& h : handles) {
    TokenEvent ev;
    while (!h->done()) {
      if (!h->next(&ev, std::chrono::milliseconds(200))) continue;
      r.streamed_tokens += static_cast<int64_t>(ev.tokens.size());
      if (ev.finish != FinishReason::kNone && ev.finish != FinishReason::kError) {
        r.output_tokens += ev.completion_tokens;
        r.prompt_tokens += ev.prompt_tokens;
      }
      if (ev.finish == FinishReason::kError) {
        ++r.errors;
        NF_LOG(kError) << "request failed: " << ev.error;
      }
    }
  }
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

void write_output_json(const WorkloadOptions& o, const std::string& text) {
  if (o.output_json.empty()) return;
  std::ofstream f(o.output_json);
  NF_CHECK_INPUT(static_cast<bool>(f)) << "cannot write " << o.output_json;
  f << text << "\n";
}

}  // namespace nanoflow::cli
